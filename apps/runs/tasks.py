"""Celery tasks of runs: ids in, one call out (the work lives in `training` and `services`)."""
from celery import shared_task

from .services import runs_reap, runs_resend_lost, runs_sweep


@shared_task(bind=True, name="runs.train")
def train(self, run_id: int) -> str:
    # Here, not at the top: every worker loads this module, and only the training worker should pay
    # for importing PyTorch (seconds, and hundreds of MB in each ingest process).
    from .training import run_train  # noqa: PLC0415

    return run_train(run_id=run_id, worker=self.request.hostname)


@shared_task(bind=True, name="runs.evaluate")
def evaluate(self, evaluation_id: int) -> str:
    from .evaluating import version_evaluation_run  # noqa: PLC0415 (PyTorch only where it trains)

    return version_evaluation_run(evaluation_id=evaluation_id, worker=self.request.hostname)


@shared_task(name="runs.reap")
def reap() -> dict:
    """The reaper's share for runs (celery beat): runs whose worker went silent go back to the queue,
    runs whose message the broker lost are sent again."""
    return {**runs_reap(), "resent": runs_resend_lost()}


@shared_task(name="runs.sweep")
def sweep() -> dict:
    """Checkpoint files no run will read (celery beat, every few minutes)."""
    return runs_sweep()
