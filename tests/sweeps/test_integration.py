"""Sweeps on real processes: a redis-server, a general worker (sweeps.advance, the reaper), celery beat
(sweeps.advance_all every 5 s) and solo training workers, all of the test's own (`stack`), training
scikit-learn's digits. The rows are read as the workers write them; every wait is a poll with a deadline."""
import signal
import time

import pytest
from django.urls import reverse

from apps.runs.models import EpochMetric, Run
from apps.runs.services import run_start
from apps.sweeps.models import Sweep
from apps.sweeps.selectors import sweep_summary
from apps.sweeps.services import sweep_advance, sweep_create
from apps.sweeps.study import rung_steps
from tests.support.factories import make_experiment
from tests.support.services import wait_until

from .conftest import digits_dataset

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A few tenths of a second an epoch on a shared CPU.
DIGITS = {"epochs": 2, "batch_size": 32, "hidden_units": [16], "seed": 1}
LR = {"lr": {"log_uniform": [1e-4, 1e-1]}}
ENDED = ("succeeded", "failed", "cancelled")


@pytest.fixture
def digits(world, stack, tmp_path):
    """The stack's broker, general worker and beat, then the digits (so that an ingest message reaches
    only this stack's workers)."""
    stack.start_reaping()
    stack.wait_ready()
    return digits_dataset(world.team, tmp_path / "digits.zip")


def trials(sweep) -> list[Run]:
    return list(Run.objects.filter(sweep_id=sweep.pk).order_by("trial_number"))


def epochs_of(run) -> list[int]:
    return list(EpochMetric.objects.filter(run_id=run.pk).order_by("epoch").values_list("epoch", flat=True))


def sweep_ended(sweep, *, timeout, stack, watch=None) -> Sweep:
    def ended():
        if watch is not None:
            watch()
        return Sweep.objects.filter(pk=sweep.pk, status__in=ENDED).first()

    return wait_until(ended, timeout=timeout, interval=0.1, message=lambda: (
        f"the sweep to end: {[(r.trial_number, r.status, r.epoch, r.attempt) for r in trials(sweep)]}\n"
        + stack.logs()))


def a_trial(sweep, predicate, *, timeout, stack, message) -> Run:
    return wait_until(lambda: next((r for r in trials(sweep) if predicate(r)), None), timeout=timeout,
                      interval=0.05, message=lambda: f"{message}\n{stack.logs()}")


def assert_every_epoch_once(runs):
    for run in runs:
        assert run.status == "succeeded", (run.trial_number, run.error)
        assert epochs_of(run) == list(range(1, run.epochs + 1)), run.trial_number  # no gap, no duplicate


def test_a_random_sweep_keeps_two_trials_at_most_and_names_its_best(world, stack, digits, api_as):
    stack.start_trainer()
    experiment = make_experiment(world.team, world.editor, digits, DIGITS)
    answer = api_as(world.editor).post(reverse("api_sweeps"), {
        "name": "lr", "experiment": experiment.pk, "method": "random", "parameters": LR, "trials": 6,
        "max_parallel": 2, "metric": "val_acc", "early_stop": None}, format="json")
    assert answer.status_code == 201, answer.content
    sweep = Sweep.objects.get(pk=answer.json()["id"])

    samples = []
    sweep = sweep_ended(sweep, timeout=240, stack=stack, watch=lambda: samples.append(
        Run.objects.filter(sweep_id=sweep.pk, status__in=Run.ACTIVE_STATUSES).count()))
    assert sweep.status == "succeeded", sweep.error
    assert max(samples) == 2, samples  # two at once (one training, one waiting), never more
    runs = trials(sweep)
    assert [r.trial_number for r in runs] == list(range(6))
    assert_every_epoch_once(runs)
    # The same from the rows' own times: no trial was created while two others were still unfinished.
    for run in runs:
        assert sum(o.created <= run.created < o.finished_at for o in runs if o.pk != run.pk) <= 1, run.trial_number
    assert len({r.trial_params["lr"] for r in runs}) == 6

    detail = api_as(world.viewer).get(reverse("api_sweep", args=[sweep.pk])).json()
    best = max(runs, key=lambda r: max(epochs_of_metric(r)))
    assert detail["best_run"] is not None
    assert max(epochs_of_metric(Run.objects.get(pk=detail["best_run"]))) == max(epochs_of_metric(best))
    assert detail["status"] == "succeeded" and detail["epochs_trained"] == detail["epochs_budget"] == 12
    assert [t["status"] for t in detail["trials"]] == ["succeeded"] * 6


def epochs_of_metric(run) -> list[float]:
    return [v for v in EpochMetric.objects.filter(run_id=run.pk).values_list("val_acc", flat=True) if v is not None]


def test_asha_prunes_trials_at_a_rung_and_keeps_the_good_one(world, stack, digits):
    stack.start_trainer()
    early_stop = {"method": "asha", "min_epochs": 1, "reduction_factor": 2}
    experiment = make_experiment(world.team, world.editor, digits, {**DIGITS, "epochs": 4, "optimizer": "adam"})
    # One rate that learns, then ones that learn nothing in 4 epochs: they fall behind at the first rung.
    sweep = sweep_create(user=world.editor, experiment=experiment, name="asha", method="grid", max_parallel=2,
                         parameters={"lr": {"values": [0.01, 1e-7, 1e-7, 1e-7]}}, early_stop=early_stop)
    sweep = sweep_ended(sweep, timeout=180, stack=stack)
    assert sweep.status == "succeeded", sweep.error
    runs = trials(sweep)
    pruned = [r for r in runs if r.pruned]
    assert pruned, [(r.trial_params, r.epoch, r.best_val_acc) for r in runs]
    rungs = rung_steps(early_stop, 4)
    assert rungs == [1, 2]
    for run in pruned:  # ended where ASHA compared it, with its curve, its best weights and their evaluation
        assert run.status == "succeeded" and run.epoch in rungs and run.epoch < run.epochs
        assert epochs_of(run) == list(range(1, run.epoch + 1))
        assert run.best_checkpoint and Run.objects.get(pk=run.pk).evaluation
    assert not runs[0].pruned and epochs_of(runs[0]) == [1, 2, 3, 4]
    assert [t["pruned"] for t in sweep_summary(sweep)["trials"]] == [r.pruned for r in runs]


def test_a_teammates_run_waits_for_one_trial_not_the_whole_sweep(world, stack, digits):
    stack.start_trainer()  # one training worker for both
    experiment = make_experiment(world.team, world.editor, digits, DIGITS)
    sweep = sweep_create(user=world.editor, experiment=experiment, name="ten", method="random", parameters=LR,
                         trials=10, max_parallel=1)
    a_trial(sweep, lambda r: r.trial_number == 0 and r.status == "running", timeout=60, stack=stack,
            message="the first trial to start")
    theirs = run_start(experiment=make_experiment(world.team, world.owner, digits, DIGITS, name="theirs"),
                       user=world.owner)
    third = a_trial(sweep, lambda r: r.trial_number == 2 and r.started_at, timeout=120, stack=stack,
                    message="the third trial to start")
    theirs = Run.objects.get(pk=theirs.pk)
    assert theirs.started_at is not None and theirs.started_at < third.started_at
    assert theirs.status == "succeeded", theirs.error


def test_a_training_worker_killed_mid_sweep_costs_no_trial_and_no_epoch(world, stack, digits):
    first = stack.start_trainer(name="first")
    experiment = make_experiment(world.team, world.editor, digits, {**DIGITS, "epochs": 10})
    sweep = sweep_create(user=world.editor, experiment=experiment, name="kill", method="random", parameters=LR,
                         trials=3, max_parallel=2)
    victim = a_trial(sweep, lambda r: r.status == "running" and 2 <= r.epoch <= r.epochs - 4, timeout=90,
                     stack=stack, message="a trial a few epochs in")
    first.signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    assert Run.objects.get(pk=victim.pk).status == "running"  # killed mid-trial
    second = stack.start_trainer(name="second")

    sweep = sweep_ended(sweep, timeout=240, stack=stack)
    assert sweep.status == "succeeded", sweep.error
    runs = trials(sweep)
    assert len(runs) == 3
    assert_every_epoch_once(runs)
    victim = Run.objects.get(pk=victim.pk)
    assert (victim.attempt, victim.worker) == (2, second.name), stack.logs()  # handed on by the reaper, resumed
    assert EpochMetric.objects.get(run=victim, epoch=1).attempt == 1  # its early epochs kept, not retrained


@pytest.mark.parametrize("keep_data", [True, False], ids=["with-its-data", "empty"])
def test_redis_restarted_mid_sweep_costs_no_trial_and_no_epoch(world, stack, keep_data, tmp_path):
    stack.start_redis(keep_data=keep_data)
    stack.start_general()
    stack.start_beat()
    trainer = stack.start_trainer()
    stack.wait_ready()
    digits = digits_dataset(world.team, tmp_path / "digits.zip")
    experiment = make_experiment(world.team, world.editor, digits, {**DIGITS, "epochs": 10})
    sweep = sweep_create(user=world.editor, experiment=experiment, name="redis", method="random", parameters=LR,
                         trials=3, max_parallel=2)
    running = a_trial(sweep, lambda r: r.status == "running" and 2 <= r.epoch <= r.epochs - 4, timeout=90,
                      stack=stack, message="a trial a few epochs in")
    waiting = next(r for r in trials(sweep) if r.pk != running.pk)
    assert waiting.status == "queued"  # its message is in the queue the restart may empty

    stack.redis.restart(keep_data=keep_data)
    assert Run.objects.get(pk=running.pk).status == "running"  # the restart happened mid-trial

    sweep = sweep_ended(sweep, timeout=240, stack=stack)
    assert sweep.status == "succeeded", sweep.error
    runs = trials(sweep)
    assert len(runs) == 3
    assert_every_epoch_once(runs)
    # No trial was lost or handed on.
    assert [(r.attempt, r.worker) for r in runs] == [(1, trainer.name)] * 3, stack.logs()
    assert trainer.proc.poll() is None


def test_cancel_ends_every_trial_within_15_seconds_and_starts_no_more(world, stack, digits, api_as):
    stack.start_trainer()
    experiment = make_experiment(world.team, world.editor, digits, {**DIGITS, "epochs": 1000})  # never ends alone
    sweep = sweep_create(user=world.editor, experiment=experiment, name="cancel", method="random", parameters=LR,
                         trials=6, max_parallel=2)
    running = a_trial(sweep, lambda r: r.status == "running" and r.epoch >= 1, timeout=90, stack=stack,
                      message="a trial to be training")

    asked = time.monotonic()
    answer = api_as(world.editor).post(reverse("api_sweep_cancel", args=[sweep.pk]))
    assert answer.status_code == 202, answer.content
    wait_until(lambda: all(r.status in Run.FINISHED_STATUSES for r in trials(sweep)), timeout=15, interval=0.05,
               message=lambda: f"every trial to end: {[(r.status, r.epoch) for r in trials(sweep)]}\n{stack.logs()}")
    took = time.monotonic() - asked
    assert took < 15
    runs = trials(sweep)
    assert [r.status for r in runs] == ["cancelled", "cancelled"]
    running = Run.objects.get(pk=running.pk)
    assert 1 <= running.epoch < running.epochs  # stopped mid-trial, not run to its end
    assert Sweep.objects.get(pk=sweep.pk).status == "cancelled"

    # Beat's advance of every running sweep, twice over after the cancel, and the training job's own
    # advance as the trial ended: none starts a trial.
    advanced = stack.general.log().count("sweeps.advance_all[")
    wait_until(lambda: stack.general.log().count("sweeps.advance_all[") >= advanced + 4, timeout=30,
               message=lambda: "beat to advance the sweeps twice more\n" + stack.logs())
    assert sweep_advance(sweep.pk) == 0
    assert len(trials(sweep)) == 2 and Sweep.objects.get(pk=sweep.pk).status == "cancelled"
