"""A real redis-server and a real Celery worker process: no eager mode, no mocks."""
import pytest
from rest_framework.test import APIClient

from dlstudio.celery import app
from tests.support.services import wait_until
from workers.tasks import ping

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_task_goes_through_the_broker_to_a_worker_and_back(celery_workers):
    result = ping.delay("hello").get(timeout=60)
    assert result == {"value": "hello", "worker": celery_workers.general.name}


def test_a_task_for_the_train_queue_reaches_only_the_training_worker(celery_workers):
    result = ping.apply_async(("gpu",), queue="train").get(timeout=60)
    assert result["worker"] in [worker.name for worker in celery_workers.trainers]


def test_each_worker_consumes_its_queues(celery_workers):
    names = [celery_workers.general.name, celery_workers.train.name]
    queues = app.control.inspect(destination=names, timeout=5).active_queues()
    assert {q["name"] for q in queues[celery_workers.general.name]} == {"default", "ingest"}
    assert {q["name"] for q in queues[celery_workers.train.name]} == {"train"}


def test_health_lists_the_workers_with_their_queues_and_device(celery_workers):
    api = APIClient()

    def listed():
        workers = {w["name"]: w for w in api.get("/api/health").json()["workers"]}
        wanted = (celery_workers.general.name, celery_workers.train.name)
        return workers if all(name in workers for name in wanted) else None

    workers = wait_until(listed, timeout=60, interval=0.5, message="both workers in /api/health")
    assert workers[celery_workers.general.name]["queues"] == ["default", "ingest"]
    assert workers[celery_workers.train.name]["queues"] == ["train"]
    assert workers[celery_workers.train.name]["device"] == "cpu"


def test_health_reports_a_broker_that_is_down(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = APIClient().get("/api/health")
    assert response.status_code == 503
    assert response.json()["broker"] == "unavailable" and response.json()["status"] == "degraded"
