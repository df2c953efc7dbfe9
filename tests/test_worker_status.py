"""What a worker announces (workers/presence.py) and how the status adds the run each one trains
(dlstudio/status.py), without Redis: the key-value calls presence makes, kept in a dict.
tests/integration/test_worker_status.py checks the same with real workers."""
import fnmatch
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.runs.models import Run
from apps.runs.services import run_start
from dlstudio.status import with_busy
from workers import presence

FIELDS = {"name", "queues", "device", "cpu_percent", "memory_mb", "gpus", "seen"}


class Keys:
    """The four calls presence makes of Redis (expiry aside), kept in a dict."""

    def __init__(self):
        self.values, self.expiry = {}, {}

    def set(self, key, value, ex=None):
        self.values[key], self.expiry[key] = value.encode(), ex

    def scan_iter(self, match, count=None):
        return [k.encode() for k in self.values if fnmatch.fnmatch(k, match)]

    def mget(self, keys):
        return [self.values.get(k.decode()) for k in keys]

    def delete(self, key):
        self.values.pop(key, None)

    def ping(self):
        return True


def test_a_worker_announces_its_cpu_memory_and_gpus_with_when_it_did():
    keys = Keys()
    status = presence.readings(["default", "ingest"])
    assert set(status) == {"cpu_percent", "memory_mb", "gpus"}
    assert status["memory_mb"] > 0 and status["cpu_percent"] >= 0 and status["gpus"] == []
    before = timezone.now().timestamp()
    presence.announce(keys, name="w1@host", queues=["ingest", "default"], device="cpu", status=status)
    [worker] = presence.workers(keys)
    assert set(worker) == FIELDS
    assert worker["queues"] == ["default", "ingest"] and worker["memory_mb"] == status["memory_mb"]
    assert before <= worker["seen"] <= timezone.now().timestamp()
    assert keys.expiry["dlstudio:worker:w1@host"] == presence.TTL
    # Its figures stay at most a refresh old, well inside what the health check promises, and it is
    # gone once silent for the expiry.
    assert presence.REFRESH <= 5 and presence.TTL == 30


def test_a_worker_that_announced_without_figures_is_listed_with_them_unknown():
    keys = Keys()
    keys.set("dlstudio:worker:old@host", json.dumps({"name": "old@host", "queues": ["train"], "device": "cpu",
                                                     "seen": 1.0}))
    [worker] = presence.workers(keys)
    assert worker["cpu_percent"] is None and worker["memory_mb"] is None and worker["gpus"] == []


def test_only_a_training_worker_reports_gpus(monkeypatch):
    gpu = {"index": 0, "name": "NVIDIA H200", "utilization": 3, "memory_used_mb": 1, "memory_total_mb": 2,
           "temperature_c": 30}
    monkeypatch.setattr(presence, "gpu_readings", lambda: [gpu])
    assert presence.readings(["train"])["gpus"] == [gpu]
    assert presence.readings(["default", "ingest"])["gpus"] == []


@pytest.mark.django_db
def test_busy_is_the_run_a_worker_trains_now(world, experiment):
    def training(worker, *, seconds_ago=0):
        run = run_start(experiment=experiment, user=world.editor)
        Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, worker=worker,
                                             heartbeat_at=timezone.now() - timezone.timedelta(seconds=seconds_ago))
        return run

    mine = training("w1@host")
    training("w2@host", seconds_ago=3600)  # its worker went silent long ago: not training it now
    finished = training("w3@host")
    Run.objects.filter(pk=finished.pk).update(status=Run.Status.SUCCEEDED)
    workers = [{"name": n} for n in ("w1@host", "w2@host", "w3@host", "w4@host")]
    assert [w["busy"] for w in with_busy(workers, database="ok")] == [mine.pk, None, None, None]
    assert [w["busy"] for w in with_busy(workers, database="unavailable")] == [None] * 4


@pytest.mark.django_db
def test_health_answers_each_workers_status(monkeypatch, world, experiment):
    keys = Keys()
    presence.announce(keys, name="w1@host", queues=["train"], device="cpu", status=presence.readings(["default"]))
    monkeypatch.setattr(presence, "client", lambda url: keys)
    run = run_start(experiment=experiment, user=world.editor)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, worker="w1@host", heartbeat_at=timezone.now())
    body = APIClient().get("/api/health").json()
    [worker] = body["workers"]
    assert set(worker) == FIELDS | {"busy"}
    assert worker["busy"] == run.pk and worker["gpus"] == []
