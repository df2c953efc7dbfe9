"""The Celery app. The broker is only a doorbell: a run's state lives on its database row.

Queues: `default` (small jobs), `ingest` (dataset packing, CPU-heavy), `train` (one process per
GPU, `--pool=solo`, because CUDA does not survive fork). Tasks are named `<app>.<verb>` and live in
each app's `tasks.py`; services send them by name (`workers.broker.send_on_commit`).
"""
import os

from celery import Celery
from django.conf import settings
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dlstudio.settings")

app = Celery("dlstudio")

QUEUES = ("default", "ingest", "train")
# Redis re-delivers an unacknowledged message after this long. It is far above the reaper's
# horizon, so a long run is never handed to a second worker by Redis itself: the reaper decides.
VISIBILITY_TIMEOUT = 7 * 24 * 3600
SWEEP_EVERY = 600.0


def configure(app: Celery, redis_url: str) -> None:
    app.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        # A broker that goes away (a Redis restart) does not stop an ingest or a run that is under way:
        # its row, not the broker, says what it is doing, and its worker reconnects when it is done.
        # (Celery's default today, said aloud: it warns that 6.0 will cancel such tasks instead.)
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_ignore_result=True,
        result_expires=3600,
        # Each queue its own exchange and routing key: a bare Queue(name) would be bound to the
        # default exchange and key, so a message for `default` would land in every queue.
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        task_default_queue="default",
        task_default_exchange="default",
        task_default_routing_key="default",
        task_routes={
            "datasets.ingest": {"queue": "ingest"},
            "runs.train": {"queue": "train"},
            "experiments.lr_range_test": {"queue": "train"},  # a few hundred steps of training, on a GPU
            "runs.evaluate": {"queue": "train"},  # a pass of the model over a version's held-out split
        },
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        timezone="UTC",
        # The reapers: rows whose worker went silent, or whose message the broker lost (docs/RELIABILITY.md).
        beat_schedule={
            "reap-stale-runs": {"task": "runs.reap", "schedule": max(5.0, settings.STALE_AFTER / 4)},
            "reap-stale-ingests": {"task": "datasets.reap", "schedule": max(5.0, settings.STALE_AFTER / 4)},
            # Hyperparameter sweeps: the next trials, for runs that ended where no one asked for them.
            "advance-sweeps": {"task": "sweeps.advance_all", "schedule": max(5.0, settings.STALE_AFTER / 4)},
            # Files that no row names and nothing writes to any more (a process killed mid-write).
            **{f"sweep-{app}": {"task": f"{app}.sweep", "schedule": SWEEP_EVERY}
               for app in ("runs", "datasets", "weights")},
        },
        beat_schedule_filename=str(settings.DATA_DIR / "celerybeat-schedule"),
    )


configure(app, settings.REDIS_URL)
app.autodiscover_tasks()  # each app's tasks.py, imported once Django is set up
app.autodiscover_tasks(["workers"])  # the worker's own: ping and its signal handlers
