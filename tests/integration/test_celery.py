"""A real redis-server and a real Celery worker process: no eager mode, no mocks."""
import pytest
from rest_framework.test import APIClient

from dlstudio.celery import app
from tests.support.services import wait_until
from workers.tasks import ping

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_task_goes_through_the_broker_to_a_worker_and_back(celery_worker):
    result = ping.delay("hello").get(timeout=60)
    assert result == {"value": "hello", "worker": celery_worker.name}


def test_the_worker_consumes_the_three_queues(celery_worker):
    queues = app.control.inspect(destination=[celery_worker.name], timeout=5).active_queues()
    assert {q["name"] for q in queues[celery_worker.name]} == {"default", "ingest", "train"}


def test_health_lists_the_worker_with_its_queues_and_device(celery_worker):
    api = APIClient()

    def listed():
        workers = {w["name"]: w for w in api.get("/api/health").json()["workers"]}
        return workers.get(celery_worker.name)

    worker = wait_until(listed, timeout=60, interval=0.5, message="the worker in /api/health")
    assert worker["queues"] == ["default", "ingest", "train"]
    assert worker["device"] == "cpu"


def test_health_reports_a_broker_that_is_down(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = APIClient().get("/api/health")
    assert response.status_code == 503
    assert response.json()["broker"] == "unavailable" and response.json()["status"] == "degraded"
