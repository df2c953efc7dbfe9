"""Celery tasks of sweeps: ids in, one call out (the work lives in `services`)."""
from celery import shared_task

from .services import sweep_advance, sweeps_advance_all


@shared_task(name="sweeps.advance")
def advance(sweep_id: int) -> int:
    """Start the trials a sweep has room for (sent by the training job as a trial's run ends)."""
    return sweep_advance(sweep_id)


@shared_task(name="sweeps.advance_all")
def advance_all() -> int:
    """The same for every running sweep (celery beat): covers the runs that end elsewhere."""
    return sweeps_advance_all()
