"""Runs through real Redis, real training worker processes and the real reaper (celery beat)."""
import signal

import pytest
from rest_framework.test import APIClient

from apps.experiments.services import experiment_create
from apps.runs.models import EpochMetric, Evaluation, Run
from apps.runs.services import run_cancel, run_start
from apps.teams.services import token_create
from tests.support.factories import QUICK
from tests.support.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

THREE_EPOCHS = {**QUICK, "epochs": 3}
LONG = {**THREE_EPOCHS, "epochs": 1000}


def start(world, dataset, config) -> Run:
    experiment = experiment_create(team=world.team, user=world.editor, name="exp", dataset=dataset,
                                   config=config)
    return run_start(experiment=experiment, user=world.editor)


def fresh(run) -> Run:
    return Run.objects.get(pk=run.pk)


def wait_for(run, predicate, *, timeout, message):
    return wait_until(lambda: (lambda r: r if predicate(r) else None)(fresh(run)), timeout=timeout, interval=0.05,
                      message=message)


def worker_of(run, celery_workers):
    return next(w for w in celery_workers.trainers if w.name == run.worker)


def test_a_run_goes_queued_running_succeeded(world, dataset, celery_workers):
    run = start(world, dataset, THREE_EPOCHS)
    seen = set()

    def done(r):
        seen.add(r.status)
        return r.status in Run.FINISHED_STATUSES

    run = wait_for(run, done, timeout=120, message="the run to finish")
    assert run.status == "succeeded", run.error + celery_workers.train_logs()[-3000:]
    assert "queued" in seen or "running" in seen
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", flat=True)) == [1, 2, 3]
    assert Evaluation.objects.filter(run=run).exists() and run.progress == 1.0
    assert run.worker in [w.name for w in celery_workers.trainers]


def test_cancel_reaches_cancelled_within_seconds(world, dataset, celery_workers):
    run = start(world, dataset, LONG)
    wait_for(run, lambda r: r.status == "running" and r.epoch >= 1, timeout=120, message="the run to train")
    _, key = token_create(user=world.editor, name="t")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.post(f"/api/runs/{run.pk}/cancel").status_code == 202
    run = wait_for(run, lambda r: r.status == "cancelled", timeout=15, message="the run to be cancelled")
    assert run.epoch < 1000 and run.lease_owner == ""


def test_kill_9_mid_run_then_a_fresh_worker_resumes_from_the_checkpoint(world, dataset, celery_workers):
    epochs = 300
    run = start(world, dataset, {**THREE_EPOCHS, "epochs": epochs})
    run = wait_for(run, lambda r: r.status == "running" and r.epoch >= 3, timeout=120, message="a few epochs")
    victim = worker_of(run, celery_workers)
    victim.signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)
    if victim is celery_workers.train:
        celery_workers.train = celery_workers.new_train_worker("train-fresh")
    else:
        celery_workers.new_train_worker("train-fresh")

    run = wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=240, message="the resumed run to end")
    assert run.status == "succeeded", run.error
    assert run.attempt == 2
    epochs_written = list(EpochMetric.objects.filter(run=run).order_by("epoch").values_list("epoch", "attempt"))
    assert [e for e, _ in epochs_written] == list(range(1, epochs + 1))  # every epoch exactly once
    # Resumed, not restarted: the epochs before the kill are still the first attempt's.
    assert epochs_written[0][1] == 1 and epochs_written[-1][1] == 2


def test_two_training_workers_take_two_runs_at_once(world, dataset, celery_workers):
    celery_workers.new_train_worker("train-second")
    first, second = start(world, dataset, LONG), start(world, dataset, LONG)
    first = wait_for(first, lambda r: r.status == "running", timeout=120, message="the first run to start")
    second = wait_for(second, lambda r: r.status == "running", timeout=120, message="the second run to start")
    assert first.worker != second.worker
    for run in (first, second):
        run_cancel(run=run)
    for run in (first, second):
        wait_for(run, lambda r: r.status == "cancelled", timeout=30, message="the runs to be cancelled")


def test_sigterm_checkpoints_and_requeues_the_run(world, dataset, celery_workers):
    run = start(world, dataset, {**THREE_EPOCHS, "epochs": 400})
    run = wait_for(run, lambda r: r.status == "running" and r.epoch >= 2, timeout=120, message="a few epochs")
    victim = worker_of(run, celery_workers)
    victim.signal(signal.SIGTERM)
    victim.proc.wait(timeout=60)
    if victim is celery_workers.train:
        celery_workers.train = celery_workers.new_train_worker("train-after-deploy")
    else:
        celery_workers.new_train_worker("train-after-deploy")
    run = wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=240, message="the run to end")
    assert run.status == "succeeded" and run.attempt == 1  # a deploy is not a failed attempt
    assert EpochMetric.objects.filter(run=run).count() == 400


def test_a_message_named_as_before_the_apps_were_split_is_refused_and_the_reaper_sends_it_again(
        world, dataset, celery_workers, monkeypatch):
    # A deployment upgraded while runs waited in the queue: their messages name `workers.tasks.train_run`,
    # which no worker of this code knows. The worker turns the message away; the run's row still says
    # `queued`, so the reaper finds no `runs.train` message for it and sends one.
    from dlstudio.celery import app
    from workers import broker

    monkeypatch.setattr(broker, "send", lambda task, *args: None)  # the row alone, as the old code left it
    run = start(world, dataset, THREE_EPOCHS)
    monkeypatch.undo()
    app.send_task("workers.tasks.train_run", args=[run.pk], queue="train")
    run = wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=120, message="the run to finish")
    assert run.status == "succeeded" and run.attempt == 1, run.error
    log = celery_workers.train_logs()
    assert "unregistered task of type 'workers.tasks.train_run'" in log
    assert "runs.train[" in log
