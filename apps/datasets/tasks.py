"""Celery tasks of datasets: ids in, one call out (the work lives in `ingest` and `services`)."""
from celery import shared_task

from .ingest import dataset_ingest
from .services import datasets_reap, datasets_resend_lost, datasets_sweep


@shared_task(name="datasets.ingest")
def ingest(dataset_id: int) -> None:
    dataset_ingest(dataset_id=dataset_id)


@shared_task(name="datasets.reap")
def reap() -> dict:
    """The reaper's share for uploads (celery beat): an ingest whose worker went silent fails, an
    upload whose message the broker lost is sent again."""
    return {"failed": datasets_reap(), "resent": datasets_resend_lost()}


@shared_task(name="datasets.sweep")
def sweep() -> dict:
    """Uploads that a dead process left half-way (celery beat, every few minutes)."""
    return datasets_sweep()
