"""What Optuna knows of a sweep, rebuilt from its trials' rows (apps/sweeps/study.py): it decides and samples
as a study that lived through the whole sweep would have."""
import random

import optuna
import pytest
from optuna.trial import TrialState

from apps.sweeps import study
from apps.sweeps.study import TrialRecord

LR = {"lr": {"log_uniform": [1e-4, 1e-1]}}
MIXED = {"lr": {"log_uniform": [1e-4, 1e-1]}, "optimizer": {"values": ["sgd", "adam"]},
         "pretrained": {"values": [None, {"run": 7}]}, "hidden": {"int": [8, 64]}, "dropout": {"uniform": [0, 0.5]}}


def replay(seed: int, *, metric: str, early_stop: dict, trials: int = 8, epochs: int = 9):
    """Trials of `epochs` epochs started at random moments, reporting in a random interleaving (now and then a
    NaN), each one asked
    after every epoch but its last whether ASHA prunes it: by a live study (Optuna's own trial.should_prune),
    and by `study.should_prune` on the records as the rows would hold them at that moment. Yields both."""
    rng = random.Random(seed)
    direction = study.METRICS[metric]
    live = optuna.create_study(direction=direction, pruner=optuna.pruners.SuccessiveHalvingPruner(
        min_resource=early_stop["min_epochs"], reduction_factor=early_stop["reduction_factor"],
        min_early_stopping_rate=0))
    records: dict[int, TrialRecord] = {}
    handles: dict[int, optuna.Trial] = {}
    # Each trial's curve: a level of its own plus noise, rounded so that ties happen too.
    levels = {n: rng.random() for n in range(trials)}
    started = 0
    while started < trials or any(r.state == "running" for r in records.values()):
        running = [n for n, r in records.items() if r.state == "running"]
        if started < trials and (not running or rng.random() < 0.3):
            handles[started] = live.ask()
            records[started] = TrialRecord(number=started, params={"lr": 10 ** -rng.uniform(1, 4)}, state="running")
            started += 1
            continue
        number = rng.choice(running)
        record, trial = records[number], handles[number]
        epoch = len(record.curve) + 1
        value = round(levels[number] + rng.uniform(-0.2, 0.2), 2)
        if 1 < epoch < epochs and rng.random() < 0.05:  # diverged: a NaN, which the row keeps as None
            trial.report(float("nan"), epoch)
            record.curve[epoch] = None
        else:
            trial.report(value, epoch)
            record.curve[epoch] = value
        if epoch == epochs:
            live.tell(trial, value)
            record.state = "complete"
            continue
        expected = trial.should_prune()
        rebuilt = study.should_prune(LR, [TrialRecord(r.number, r.params, r.state, dict(r.curve))
                                          for r in records.values()],
                                     metric=metric, early_stop=early_stop, number=number, epoch=epoch)
        yield number, epoch, expected, rebuilt
        if expected:
            live.tell(trial, state=TrialState.PRUNED)
            record.state = "pruned"
        elif rng.random() < 0.03:  # a run that fails (or is cancelled) in its next epoch
            live.tell(trial, state=TrialState.FAIL)
            record.state = "failed"


@pytest.mark.parametrize("metric", ["val_acc", "val_loss"])
@pytest.mark.parametrize("early_stop", [{"method": "asha", "min_epochs": 1, "reduction_factor": 3},
                                        {"method": "asha", "min_epochs": 1, "reduction_factor": 2},
                                        {"method": "asha", "min_epochs": 2, "reduction_factor": 2}],
                         ids=["1x3", "1x2", "2x2"])
def test_a_rebuilt_study_prunes_exactly_as_a_live_one_at_every_report(metric, early_stop):
    decisions = []
    for seed in range(6):
        for number, epoch, expected, rebuilt in replay(seed, metric=metric, early_stop=early_stop):
            assert rebuilt == expected, (seed, number, epoch)
            decisions.append((epoch, expected))
    rungs = set(study.rung_steps(early_stop, 9))
    assert any(expected for _, expected in decisions)  # the comparison covered prunes...
    assert any(not expected and epoch in rungs for epoch, expected in decisions)  # ...and promotions
    assert all(epoch in rungs for epoch, expected in decisions if expected)  # only ever at a rung


def test_between_rungs_nothing_is_pruned_however_far_behind():
    early_stop = {"method": "asha", "min_epochs": 1, "reduction_factor": 3}
    leaders = [TrialRecord(n, {"lr": 0.01}, "complete", {e: 0.9 for e in range(1, 10)}) for n in range(3)]
    laggard = TrialRecord(3, {"lr": 1e-4}, "running", {1: 0.95, 2: 0.0})
    assert not study.should_prune(LR, [*leaders, laggard], metric="val_acc", early_stop=early_stop, number=3, epoch=2)
    laggard.curve[3] = 0.0
    assert study.should_prune(LR, [*leaders, laggard], metric="val_acc", early_stop=early_stop, number=3, epoch=3)


def test_a_metric_gone_missing_at_a_rung_prunes_and_one_never_measured_does_not():
    early_stop = {"method": "asha", "min_epochs": 1, "reduction_factor": 2}
    others = [TrialRecord(n, {"lr": 0.01}, "complete", {e: 0.1 for e in range(1, 5)}) for n in range(2)]
    diverged = TrialRecord(2, {"lr": 0.1}, "running", {1: 0.05, 2: None})  # the best so far, then a NaN loss
    assert study.should_prune(LR, [*others, diverged], metric="val_loss", early_stop=early_stop, number=2, epoch=2)
    unmeasured = TrialRecord(2, {"lr": 0.1}, "running", {1: None, 2: None})  # no validation split
    assert not study.should_prune(LR, [*others, unmeasured], metric="val_loss", early_stop=early_stop, number=2,
                                  epoch=2)


def test_random_sampling_of_trial_n_is_the_same_when_asked_again_and_differs_between_trials():
    first = [study.next_params(MIXED, [], method="random", metric="val_acc", seed=5, number=n) for n in range(10)]
    # Asked again, after other trials have started and ended (a study rebuilt later, from more rows).
    later = [TrialRecord(n, p, "complete", {1: 0.5 + n / 100}) for n, p in enumerate(first)]
    again = [study.next_params(MIXED, later[:n], method="random", metric="val_acc", seed=5, number=n)
             for n in range(10)]
    assert again == first
    assert len({p["lr"] for p in first}) == 10 and len({p["dropout"] for p in first}) == 10
    for params in first:
        assert 1e-4 <= params["lr"] <= 1e-1 and 8 <= params["hidden"] <= 64 and 0 <= params["dropout"] <= 0.5
        assert params["optimizer"] in ("sgd", "adam") and params["pretrained"] in (None, {"run": 7})
    other_seed = study.next_params(MIXED, [], method="random", metric="val_acc", seed=6, number=0)
    assert other_seed != first[0]


def test_grid_point_enumerates_the_product_in_the_order_given():
    parameters = {"optimizer": {"values": ["sgd", "adam"]}, "hidden": {"int": [1, 3]},
                  "pretrained": {"values": [None, {"run": 7}]}}
    assert study.grid_size(parameters) == 12
    points = [study.grid_point(parameters, n) for n in range(12)]
    assert points == [{"optimizer": o, "hidden": h, "pretrained": p}
                      for o in ("sgd", "adam") for h in (1, 2, 3) for p in (None, {"run": 7})]
    assert [study.next_params(parameters, [], method="grid", metric="val_acc", seed=0, number=n)
            for n in range(12)] == points


def test_tpe_samples_with_running_and_failed_trials_present_and_is_deterministic():
    rng = random.Random(0)
    records = []
    for n in range(14):
        params = study.next_params(MIXED, records, method="random", metric="val_loss", seed=1, number=n)
        state = "running" if n >= 12 else "failed" if n == 3 else "complete"
        curve = {} if state == "running" else {1: abs(params["lr"] - 0.01) + rng.random() / 100}
        records.append(TrialRecord(n, params, state, curve))
    records.append(TrialRecord(14, records[0].params, "pruned", {1: 0.5}))
    asked = [study.next_params(MIXED, records, method="tpe", metric="val_loss", seed=1, number=15)
             for _ in range(2)]
    assert asked[0] == asked[1]
    params = asked[0]
    assert set(params) == set(MIXED)
    assert 1e-4 <= params["lr"] <= 1e-1 and 8 <= params["hidden"] <= 64 and 0 <= params["dropout"] <= 0.5
    assert params["optimizer"] in ("sgd", "adam") and params["pretrained"] in (None, {"run": 7})
    assert study.next_params(MIXED, records, method="tpe", metric="val_loss", seed=1, number=16) != params


def test_a_value_is_the_best_of_its_curve_in_the_metrics_direction():
    record = TrialRecord(0, {}, "complete", {1: 0.2, 2: float("nan"), 3: 0.7, 4: None, 5: 0.5})
    assert record.value("maximize") == 0.7 and record.value("minimize") == 0.2
    assert TrialRecord(1, {}, "running", {1: None}).value("maximize") is None
