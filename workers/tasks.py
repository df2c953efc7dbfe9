"""The worker's own task, beside each app's (apps/*/tasks.py)."""
from celery import current_task, shared_task

from . import signals  # noqa: F401  (imported with the tasks, so that every worker connects its handlers)


@shared_task(ignore_result=False)
def ping(value: str = "pong") -> dict:
    """A round trip through the broker: what the health checks and the integration tests send."""
    return {"value": value, "worker": current_task.request.hostname}
