"""Celery tasks: ids in, a service call, nothing else."""
from celery import shared_task
from celery.signals import worker_ready, worker_shutdown, worker_shutting_down
from django.conf import settings

from . import presence

_announcer: presence.Announcer | None = None


@worker_ready.connect
def _announce_worker(sender, **kwargs):
    global _announcer
    queues = [q.name for q in sender.task_consumer.queues]
    _announcer = presence.Announcer(url=settings.REDIS_URL, name=sender.hostname, queues=queues)
    _announcer.start()


@worker_shutdown.connect
def _withdraw_worker(**kwargs):
    if _announcer is not None:
        _announcer.stop()


@shared_task(ignore_result=False)
def ping(value: str = "pong") -> dict:
    """A round trip through the broker: what the health checks and the integration tests send."""
    from celery import current_task

    return {"value": value, "worker": current_task.request.hostname}


@shared_task
def ingest_dataset(dataset_id: int) -> None:
    from apps.datasets.services import dataset_ingest

    dataset_ingest(dataset_id=dataset_id)


@worker_shutting_down.connect
def _stop_training_on_shutdown(**kwargs):
    # A warm shutdown (deploy, Ctrl-C) lets the running task finish; a training run would take
    # hours, so it is asked to checkpoint and go back to the queue instead.
    from apps.experiments.training import shutdown_requested

    shutdown_requested.set()


@shared_task(bind=True)
def train_run(self, run_id: int) -> str:
    from apps.experiments.training import run_train

    return run_train(run_id=run_id, worker=self.request.hostname)


@shared_task
def reap_stale_runs() -> dict:
    """The reaper (celery beat): runs whose worker went silent go back to the queue, uploads whose
    worker went silent fail, and runs and uploads whose message the broker lost are sent again."""
    from apps.datasets.services import datasets_reap, datasets_resend_lost
    from apps.experiments.services import runs_reap, runs_resend_lost

    return {**runs_reap(), "resent": runs_resend_lost(), "datasets_failed": datasets_reap(),
            "datasets_resent": datasets_resend_lost()}


@shared_task(bind=True)
def train_lr_range_test(self, finding_id: int) -> str:
    """On the `train` queue: the LR finder trains on a GPU like a run does."""
    from apps.experiments.lr_finding import lr_finding_run

    return lr_finding_run(finding_id=finding_id, worker=self.request.hostname)
