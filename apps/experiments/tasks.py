"""Celery tasks of experiments: ids in, one call out."""
from celery import shared_task

from .lr_finder import lr_finding_run


@shared_task(bind=True, name="experiments.lr_range_test")
def lr_range_test(self, finding_id: int) -> str:
    """On the `train` queue: the range test trains on a GPU as a run does."""
    return lr_finding_run(finding_id=finding_id, worker=self.request.hostname)
