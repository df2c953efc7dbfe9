"""A worker that lost its run changes nothing; the row and the checkpoint files it names always agree;
a cancel always ends the run. Real workers, stopped, woken and killed at chosen moments."""
import hashlib
import os
import signal
import time

import pytest
from django.db import connection

from apps.runs.models import EpochMetric, Evaluation, Run
from apps.runs.services import TRAIN_TASK, run_cancel, runs_reap, runs_sweep
from apps.runs.training import run_train
from dlstudio import storage
from tests.support.factories import QUICK, ready_dataset
from tests.support.services import wait_until
from workers import broker
from workers.engine import load_checkpoint

from .conftest import fresh, start, stop_between_writes, wait_for, writable

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LONG = {**QUICK, "epochs": 150}
DYING = "tests.support.dying_worker"


def sha256(relative: str) -> str:
    return hashlib.sha256(storage.absolute(relative).read_bytes()).hexdigest()


def record_of(run) -> dict:
    """Everything the product says about a finished run, and the files it names."""
    run = fresh(run)
    evaluation = Evaluation.objects.get(run=run)
    return {"run": {f: getattr(run, f) for f in ("status", "epoch", "best_epoch", "best_val_acc", "test_acc", "fence",
                                                 "last_checkpoint", "best_checkpoint")},
            "epochs": list(EpochMetric.objects.filter(run=run).order_by("epoch").values_list(
                "epoch", "attempt", "train_loss", "val_acc")),
            "evaluation": (evaluation.checkpoint, evaluation.checkpoint_sha256, evaluation.accuracy),
            "files": {name: sha256(name) for name in (run.last_checkpoint, run.best_checkpoint)}}


def assert_agrees(run) -> None:
    """The files the row names hold what the row says; the evaluation scored the best of them."""
    run = fresh(run)
    assert run.status == "succeeded", run.error
    assert load_checkpoint(storage.absolute(run.last_checkpoint))["epoch"] == run.epoch == run.epochs
    assert load_checkpoint(storage.absolute(run.best_checkpoint))["epoch"] == run.best_epoch
    evaluation = Evaluation.objects.get(run=run)
    assert (evaluation.checkpoint, evaluation.checkpoint_sha256) == (run.best_checkpoint, sha256(run.best_checkpoint))
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", flat=True)) == list(range(1, run.epochs + 1))


def test_a_worker_stopped_then_woken_after_its_run_was_handed_on_changes_nothing(world, dataset, stack):
    stack.start_reaping()
    first = stack.start_trainer(name="first")
    run = start(world, dataset, LONG)
    wait_for(run, lambda r: r.status == "running" and r.epoch >= 3, timeout=120, message="a few epochs")
    stop_between_writes(first, run)
    stack.start_trainer(name="second")
    wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=240,
             message=lambda: "the run to end\n" + stack.logs())
    assert fresh(run).fence == 2 and fresh(run).worker != first.name
    assert_agrees(run)
    before = record_of(run)
    # The second claim's epochs carry its attempt.
    assert any(attempt == 2 for _, attempt, _, _ in before["epochs"])

    first.signal(signal.SIGCONT)  # it goes on with its epoch as if nothing happened, until it learns
    wait_until(lambda: "'lost'" in first.log(), timeout=60,
               message=lambda: "the woken worker to give up\n" + first.log())
    assert record_of(run) == before  # not a row, not a file, not the evaluation
    # Its own files went with it: none is named, none was left behind.
    claim = storage.absolute(f"{fresh(run).checkpoint_dir}/claim-1")
    named = {before["run"]["last_checkpoint"], before["run"]["best_checkpoint"]}
    assert not claim.exists() or {storage.relative(p) for p in claim.iterdir()} <= named


@pytest.mark.skipif(connection.vendor != "postgresql", reason=(
    "SQLite locks the whole file: a worker stopped inside a write holds every writer up until it is woken "
    "or killed (docs/RELIABILITY.md)"))
def test_a_worker_stopped_inside_a_write_holds_up_neither_the_reaper_nor_for_long_its_run(world, dataset, stack):
    stack.start_reaping()
    # Its own DLSTUDIO_STALE_AFTER, longer than the others': how long its session may sit in a transaction.
    frozen = stack.start_trainer(env={"DLSTUDIO_TEST_STOP_INSIDE_WRITE_AT_EPOCH": "3", "DLSTUDIO_STALE_AFTER": "90"},
                                 app=DYING, name="frozen")
    run = start(world, dataset, {**QUICK, "epochs": 8})
    wait_until(frozen.stopped, timeout=120,
               message=lambda: "the worker to stop inside epoch 3's write\n" + frozen.log())
    assert not writable(run)  # it holds the run's row
    # Meanwhile another run's worker dies: the reaper hands that run on, not held up at the frozen row.
    other = start(world, dataset, {**QUICK, "epochs": 8}, name="other")
    dying = stack.start_trainer(env={"DLSTUDIO_TEST_DIE_AT_EPOCH": "2"}, app=DYING, name="dying", wait=False)
    wait_until(lambda: dying.proc.poll() is not None, timeout=120, message="the other run's worker to die")
    stack.start_trainer(name="healthy")
    wait_for(other, lambda r: r.status in Run.FINISHED_STATUSES, timeout=80,
             message=lambda: "the other run to end\n" + stack.logs())
    assert_agrees(other)
    assert fresh(other).attempt == 2
    assert frozen.stopped() and not writable(run)
    # Once the frozen session has sat in its transaction for its DLSTUDIO_STALE_AFTER, PostgreSQL ends it:
    # epoch 3 is rolled back, and the run is handed on like any silent worker's.
    wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=180,
             message=lambda: "the frozen worker's run to end\n" + stack.logs())
    assert_agrees(run)
    assert fresh(run).attempt == 2
    before = record_of(run)
    frozen.signal(signal.SIGCONT)  # its session is gone: nothing it does now reaches the database
    wait_until(lambda: "raised" in frozen.log() or "succeeded" in frozen.log(), timeout=60,
               message=lambda: "the woken worker to end its task\n" + frozen.log())
    assert record_of(run) == before


def test_a_kill_between_the_two_checkpoints_of_an_epoch_leaves_the_record_and_the_files_agreeing(
        world, tmp_path, stack):
    # No validation split: the train loss makes every epoch a new best, so epoch 3 has both files to write.
    dataset = ready_dataset(world.team, tmp_path / "no-val.zip", options={"val_fraction": 0.0})
    stack.start_reaping()
    dying = stack.start_trainer(env={"DLSTUDIO_TEST_DIE_BETWEEN_CHECKPOINTS": "3"}, app=DYING, name="dying")
    run = start(world, dataset, {**QUICK, "epochs": 8})
    wait_until(lambda: dying.proc.poll() is not None, timeout=120, message="the worker to die at epoch 3 or later")
    # The dead epoch was not recorded (its best checkpoint was never written); what is recorded agrees.
    dead = fresh(run)
    assert 2 <= dead.epoch < 8
    assert load_checkpoint(storage.absolute(dead.last_checkpoint))["epoch"] == dead.epoch
    assert load_checkpoint(storage.absolute(dead.best_checkpoint))["epoch"] == dead.best_epoch
    stack.start_trainer(name="healthy")
    wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=180,
             message=lambda: "the run to end\n" + stack.logs())
    assert_agrees(run)
    assert fresh(run).attempt == 2


def test_a_kill_while_writing_a_checkpoint_leaves_a_temporary_that_the_sweep_removes(world, dataset, stack):
    stack.start_reaping()
    dying = stack.start_trainer(env={"DLSTUDIO_TEST_DIE_WHILE_SAVING": "2"}, app=DYING, name="dying")
    run = start(world, dataset, {**QUICK, "epochs": 4})
    wait_until(lambda: dying.proc.poll() is not None, timeout=120, message="the worker to die saving epoch 2")
    folder = storage.absolute(fresh(run).checkpoint_dir)
    [temporary] = folder.rglob(".last-e2.pt.*.tmp")
    stack.start_trainer(name="healthy")
    wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=180,
             message=lambda: "the run to end\n" + stack.logs())
    assert_agrees(run)
    runs_sweep()
    if temporary.exists():  # its claim still holds the run's best checkpoint: the temporary waits an hour
        an_hour_ago = time.time() - 3700
        os.utime(temporary, (an_hour_ago, an_hour_ago))
        assert runs_sweep()["temporaries"] == 1
    assert not list(folder.rglob("*.tmp"))
    assert_agrees(run)


@pytest.mark.parametrize("first", ["cancel", "shutdown"])
def test_a_cancel_at_the_warm_shutdown_ends_the_run_cancelled(world, dataset, stack, first):
    stack.start_reaping()
    trainer = stack.start_trainer()
    run = start(world, dataset, LONG)
    wait_for(run, lambda r: r.status == "running" and r.epoch >= 1, timeout=120, message="the run to train")
    if first == "cancel":
        run_cancel(run=fresh(run))
        trainer.signal(signal.SIGTERM)
    else:
        trainer.signal(signal.SIGTERM)
        wait_until(lambda: "shutdown" in trainer.log().lower(), timeout=30, message="the worker to see the shutdown")
        run_cancel(run=fresh(run))
    run = wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=60,
                   message=lambda: "the run to end\n" + trainer.log()[-3000:])
    assert run.status == "cancelled" and run.lease_owner == ""
    trainer.proc.wait(timeout=60)
    runs_reap()  # nothing brings it back
    assert fresh(run).status == "cancelled"
    # The worker may have put the run back in the queue (with a message) just before the cancel made the
    # queued run cancelled: whatever message is left, the claim refuses it, and the run stays cancelled.
    if broker.messages("train", TRAIN_TASK).get(run.pk):
        assert run_train(run_id=run.pk, worker="late@test") == "not claimed"
    assert fresh(run).status == "cancelled" and fresh(run).epoch == run.epoch


def test_a_cancel_as_the_worker_dies_ends_the_run_at_the_next_pass_not_after_the_stale_horizon(
        world, dataset, worker_env, redis_server, tmp_path):
    from tests.conftest import Workers
    from tests.support.stack import Stack, point_celery_at

    session = Workers.session
    if session is not None:
        session.beat.stop()
    stack = Stack(env=worker_env, directory=tmp_path / "stack", stale_after="60")
    try:
        stack.start_reaping()
        trainer = stack.start_trainer()
        run = start(world, dataset, LONG)
        wait_for(run, lambda r: r.status == "running" and r.epoch >= 1, timeout=120, message="the run to train")
        trainer.signal(signal.SIGKILL)
        run_cancel(run=fresh(run))
        killed = time.monotonic()
        run = wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=55,
                       message=lambda: "the run to end before the stale horizon\n" + stack.logs())
        assert run.status == "cancelled" and time.monotonic() - killed < 60
    finally:
        stack.stop()
        point_celery_at(redis_server.url)
        if session is not None:
            session.beat.start()
