"""A sweep's trials, started, trained in this process and followed up by `sweep_advance`."""
import pytest

from apps.runs.models import Run
from apps.runs.training import run_train
from apps.sweeps.models import Sweep
from apps.sweeps.selectors import sweep_summary
from apps.sweeps.services import sweep_advance, sweep_cancel, sweep_create
from tests.support.factories import QUICK, make_experiment

pytestmark = pytest.mark.django_db

LR = {"lr": {"log_uniform": [1e-4, 1e-1]}, "optimizer": {"values": ["sgd", "adam"]}}


def trials(sweep):
    return list(Run.objects.filter(sweep=sweep).order_by("trial_number"))


def train_all_queued(sweep):
    for run in trials(sweep):
        if run.status == "queued":
            run_train(run_id=run.pk, worker="w@test")


def test_a_random_sweep_keeps_max_parallel_trials_and_ends_when_all_have(world, dataset):
    experiment = make_experiment(world.team, world.editor, dataset, {**QUICK, "epochs": 2})
    sweep = sweep_create(user=world.editor, experiment=experiment, name="lr", method="random", parameters=LR,
                         trials=5, max_parallel=2, seed=3)
    assert [r.status for r in trials(sweep)] == ["queued", "queued"]
    while sweep_advance(sweep.pk) or any(r.status == "queued" for r in trials(sweep)):
        assert sum(r.status in ("queued", "running") for r in trials(sweep)) <= 2
        train_all_queued(sweep)
    runs = trials(sweep)
    assert [r.trial_number for r in runs] == [0, 1, 2, 3, 4]
    assert all(r.status == "succeeded" for r in runs)
    for run in runs:  # each trial trained with the values it was given
        assert run.config["lr"] == run.trial_params["lr"] and run.config["optimizer"] == run.trial_params["optimizer"]
        assert 1e-4 <= run.trial_params["lr"] <= 1e-1
    assert len({r.trial_params["lr"] for r in runs}) == 5
    sweep.refresh_from_db()
    assert sweep.status == "succeeded"
    summary = sweep_summary(sweep)
    best = max(runs, key=lambda r: r.best_val_acc)
    assert summary["best_run"] == best.pk
    assert summary["epochs_trained"] == summary["epochs_budget"] == 10


def test_a_grid_runs_its_whole_product_in_order(world, dataset):
    experiment = make_experiment(world.team, world.editor, dataset, {**QUICK, "epochs": 1})
    sweep = sweep_create(user=world.editor, experiment=experiment, name="grid", method="grid", max_parallel=10,
                         parameters={"optimizer": {"values": ["sgd", "adam"]},
                                     "augment.hflip": {"values": [False, True]}})
    assert sweep.trials == 4
    assert [r.trial_params for r in trials(sweep)] == [
        {"optimizer": "sgd", "augment.hflip": False}, {"optimizer": "sgd", "augment.hflip": True},
        {"optimizer": "adam", "augment.hflip": False}, {"optimizer": "adam", "augment.hflip": True}]
    assert trials(sweep)[1].config["augment"]["hflip"] is True


def test_asha_prunes_a_trial_that_falls_behind_at_a_rung(world, dataset):
    experiment = make_experiment(world.team, world.editor, dataset, {**QUICK, "epochs": 4})
    # One good learning rate, then hopeless ones: a rate of 1e-7 learns nothing in 4 epochs.
    sweep = sweep_create(user=world.editor, experiment=experiment, name="asha", method="grid", max_parallel=1,
                         parameters={"lr": {"values": [0.01, 1e-7, 1e-7, 1e-7]}},
                         early_stop={"method": "asha", "min_epochs": 1, "reduction_factor": 2})
    while sweep_advance(sweep.pk) or any(r.status == "queued" for r in trials(sweep)):
        train_all_queued(sweep)
    runs = trials(sweep)
    pruned = [r for r in runs if r.pruned]
    assert pruned, [(r.trial_params, r.epoch, r.best_val_acc) for r in runs]
    for run in pruned:
        assert run.status == "succeeded" and run.epoch in (1, 2) and run.epoch < run.epochs
        assert run.metrics.count() == run.epoch and run.best_checkpoint and run.evaluation
    assert not runs[0].pruned and runs[0].epoch == 4


def test_cancel_ends_the_queued_trials_and_starts_no_more(world, dataset):
    experiment = make_experiment(world.team, world.editor, dataset)
    sweep = sweep_create(user=world.editor, experiment=experiment, name="c", method="random", parameters=LR,
                         trials=6, max_parallel=2)
    sweep_cancel(sweep=sweep, user=world.editor)
    assert Sweep.objects.get(pk=sweep.pk).status == "cancelled"
    assert {r.status for r in trials(sweep)} == {"cancelled"}
    assert sweep_advance(sweep.pk) == 0 and len(trials(sweep)) == 2


def test_a_sweep_whose_creator_left_the_team_starts_no_more_trials_and_says_why(world, dataset):
    from apps.teams.models import Membership

    experiment = make_experiment(world.team, world.editor, dataset)
    sweep = sweep_create(user=world.editor, experiment=experiment, name="left", method="random", parameters=LR,
                         trials=6, max_parallel=1)
    Membership.objects.filter(team=world.team, user=world.editor).delete()
    train_all_queued(sweep)
    assert sweep_advance(sweep.pk) == 0 and len(trials(sweep)) == 1
    sweep.refresh_from_db()
    assert sweep.status == "failed" and "can no longer start runs" in sweep.error
