"""Each worker's status in /api/health, from real worker processes through a real Redis: its figures
fresh, the run it trains, and a killed worker gone within the 30 s its announcement lives."""
import signal
import time

import psutil
import pytest
from rest_framework.test import APIClient

from apps.experiments.services import experiment_create
from apps.runs.models import Run
from apps.runs.services import run_cancel, run_start
from tests.support.factories import QUICK
from tests.support.services import CeleryWorker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MiB = 2**20
FRESH = 10  # seconds: how old a live worker's figures may be (the health check's promise)
GONE_WITHIN = 30  # seconds: how long a silent worker stays listed (presence.TTL)


def listed(name):
    """The worker named `name` in /api/health now, or None."""
    return next((w for w in APIClient().get("/api/health").json()["workers"] if w["name"] == name), None)


def test_each_worker_reports_fresh_figures_of_its_whole_process_tree(celery_workers):
    general, train = celery_workers.general, celery_workers.train
    first = wait_until(lambda: listed(general.name), timeout=60, interval=0.5, message="the worker in /api/health")
    assert time.time() - first["seen"] <= FRESH
    assert first["gpus"] == [] and first["device"] == "cpu"
    assert isinstance(first["cpu_percent"], float) and first["cpu_percent"] >= 0
    # A prefork worker works in its pool's child: the child's memory is counted with the parent's.
    parent = psutil.Process(general.proc.pid)
    assert parent.children(), "a prefork worker has a pool"
    assert first["memory_mb"] > parent.memory_info().rss / MiB + 20
    # And the figures keep coming: a newer announcement well inside the promise.
    later = wait_until(lambda: (lambda w: w if w and w["seen"] > first["seen"] else None)(listed(general.name)),
                       timeout=FRESH, interval=0.5, message="a newer announcement")
    assert later["seen"] - first["seen"] <= FRESH
    trainer = wait_until(lambda: listed(train.name), timeout=30, interval=0.5, message="the training worker")
    assert set(trainer) >= {"busy", "cpu_percent", "memory_mb", "gpus", "seen"}


def test_busy_names_the_run_while_it_trains_then_none(world, dataset, celery_workers):
    experiment = experiment_create(team=world.team, user=world.editor, name="busy", dataset=dataset,
                                   config={**QUICK, "epochs": 1000})
    run = run_start(experiment=experiment, user=world.editor)
    run = wait_until(lambda: Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING, epoch__gte=1).first(),
                     timeout=120, interval=0.2, message="the run to train")
    # While it trains: its run, and the CPU its training takes.
    trainer = wait_until(lambda: (lambda w: w if w and w["busy"] == run.pk and w["cpu_percent"] > 10 else None)(
        listed(run.worker)), timeout=FRESH + 5, interval=0.5, message="the worker busy with the run")
    assert trainer["memory_mb"] > 0
    run_cancel(run=run)
    wait_until(lambda: Run.objects.filter(pk=run.pk, status=Run.Status.CANCELLED).exists(), timeout=30,
               interval=0.2, message="the run to be cancelled")
    assert listed(run.worker)["busy"] is None


def test_a_killed_worker_disappears_within_30_s(worker_env, redis_server, celery_workers, tmp_path):
    from dlstudio.celery import app

    # A worker of its own, on a queue nobody sends to: killing it costs the other tests nothing.
    worker = CeleryWorker(env=worker_env, queues="status-probe", pool="solo", log_dir=tmp_path, name="doomed")
    try:
        worker.start().wait_ready(app)
        wait_until(lambda: listed(worker.name), timeout=60, interval=0.5, message="the worker in /api/health")
        worker.signal(signal.SIGKILL)  # no shutdown signal runs: its announcement is left to expire
        killed = time.monotonic()
        worker.proc.wait(timeout=10)
        wait_until(lambda: listed(worker.name) is None, timeout=GONE_WITHIN + 1, interval=0.5,
                   message=lambda: f"the killed worker to leave /api/health\n{worker.log()[-2000:]}")
        assert time.monotonic() - killed <= GONE_WITHIN + 1
    finally:
        worker.stop()
