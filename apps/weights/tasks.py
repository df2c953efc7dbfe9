"""Celery tasks of the weights library."""
from celery import shared_task

from .services import weights_sweep


@shared_task(name="weights.sweep")
def sweep() -> int:
    """Weights uploads that a dead web process left half-checked (celery beat, every few minutes)."""
    return weights_sweep()
