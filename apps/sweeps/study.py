"""What Optuna knows of a sweep, rebuilt from its runs each time it is asked (no Django here).

The runs' rows are the sweep's truth. Optuna's study lives in memory for one question (the next
trial's parameters, whether to prune a trial at this epoch, which parameters mattered) and is built
from `TrialRecord`s, so nothing needs reconciling after a restart of the web, a worker or Redis
(docs/ARCHITECTURE.md, "Sweeps").

- A `values` space is a categorical over the values' positions (Optuna's choices must be plain
  scalars; a value here may be `{"run": 7}`); `uniform`, `log_uniform` and `int` are Optuna's own.
- Random and TPE sample with Optuna, seeded by the sweep's seed and the trial's number, so a rebuilt
  study asks what the live one would have. A grid has nothing to sample: trial n is the grid's n-th
  point, in the order the parameters were given.
- ASHA is Optuna's `SuccessiveHalvingPruner`. It keeps each trial's value at each rung it reached
  in the trial's system attributes; a rebuilt study gets them back from the trials' epochs
  (`tests/sweeps/test_study.py` checks that it decides as a live study does).
"""
from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution,
)
from optuna.trial import TrialState, create_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)

# How a run's metric is read: higher is better for accuracies, lower for losses.
METRICS = {"val_acc": "maximize", "val_loss": "minimize", "train_acc": "maximize", "train_loss": "minimize"}
RUNG_KEY = "completed_rung_{}"  # optuna.pruners._successive_halving's name for a rung's value


@dataclass
class TrialRecord:
    """What a run says about its trial."""

    number: int
    params: dict[str, Any]  # the values drawn, as the run was started with them
    state: str  # "running" (queued too), "complete", "pruned" or "failed"
    curve: dict[int, float] = field(default_factory=dict)  # epoch -> the metric's value

    def value(self, direction: str) -> float | None:
        values = [v for v in self.curve.values() if v is not None and math.isfinite(v)]
        if not values:
            return None
        return max(values) if direction == "maximize" else min(values)


def distribution(space: dict) -> BaseDistribution:
    if "values" in space:
        return CategoricalDistribution(tuple(range(len(space["values"]))))
    if "log_uniform" in space:
        return FloatDistribution(*space["log_uniform"], log=True)
    if "int" in space:
        return IntDistribution(*space["int"])
    return FloatDistribution(*space["uniform"])


def grid_size(parameters: dict[str, dict]) -> int:
    return math.prod(len(grid_values(space)) for space in parameters.values())


def grid_values(space: dict) -> list:
    if "values" in space:
        return list(space["values"])
    lo, hi = space["int"]
    return list(range(lo, hi + 1))


def grid_point(parameters: dict[str, dict], number: int) -> dict[str, Any]:
    point = next(itertools.islice(itertools.product(*(grid_values(s) for s in parameters.values())), number, None))
    return dict(zip(parameters, point))


def _encoded(parameters: dict[str, dict], params: dict[str, Any]) -> dict[str, Any]:
    """A run's values as Optuna's params (a position for a `values` space)."""
    encoded = {}
    for key, space in parameters.items():
        value = params.get(key)
        encoded[key] = space["values"].index(value) if "values" in space and value in space["values"] else value
    return encoded


def _decoded(parameters: dict[str, dict], params: dict[str, Any]) -> dict[str, Any]:
    return {key: space["values"][params[key]] if "values" in space else params[key]
            for key, space in parameters.items()}


def rung_steps(early_stop: dict | None, epochs: int) -> list[int]:
    """The epochs at which ASHA compares a trial with the others (min_epochs × factor^k, before the end)."""
    if not early_stop:
        return []
    steps, step = [], early_stop["min_epochs"]
    while step < epochs:
        steps.append(step)
        step *= early_stop["reduction_factor"]
    return steps


def build(parameters: dict[str, dict], trials: list[TrialRecord], *, metric: str,
          early_stop: dict | None = None, sampler: optuna.samplers.BaseSampler | None = None,
          leave_running: int | None = None) -> optuna.Study:
    """An in-memory study holding `trials`; the one numbered `leave_running` is added without the
    rungs ASHA has not compared it at yet (it is the trial being asked about)."""
    direction = METRICS[metric]
    pruner = (optuna.pruners.SuccessiveHalvingPruner(
        min_resource=early_stop["min_epochs"], reduction_factor=early_stop["reduction_factor"],
        min_early_stopping_rate=0) if early_stop else optuna.pruners.NopPruner())
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
    distributions = {key: distribution(space) for key, space in parameters.items()}
    for record in sorted(trials, key=lambda t: t.number):
        curve = {epoch: v for epoch, v in record.curve.items() if v is not None and math.isfinite(v)}
        last = max(curve, default=0)
        # A rung a trial has passed (or was pruned at) holds its value at that epoch; the trial asked
        # about has not been compared at its latest epoch yet.
        attrs = {RUNG_KEY.format(rung): curve[step] for rung, step in enumerate(_steps_upto(early_stop, last))
                 if step in curve and not (record.number == leave_running and step == last)}
        state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                 "failed": TrialState.FAIL}.get(record.state, TrialState.RUNNING)
        value = record.value(direction) if state == TrialState.COMPLETE else None
        if state == TrialState.COMPLETE and value is None:
            state = TrialState.FAIL
        study.add_trial(create_trial(
            state=state, value=value, params=_encoded(parameters, record.params), distributions=distributions,
            intermediate_values=curve, system_attrs=attrs, user_attrs={"number": record.number}))
    return study


def _steps_upto(early_stop: dict | None, epoch: int) -> list[int]:
    if not early_stop:
        return []
    steps, step = [], early_stop["min_epochs"]
    while step <= epoch:
        steps.append(step)
        step *= early_stop["reduction_factor"]
    return steps


def next_params(parameters: dict[str, dict], trials: list[TrialRecord], *, method: str, metric: str,
                seed: int, number: int) -> dict[str, Any]:
    """The parameters of trial `number`, given the trials so far."""
    if method == "grid":
        return grid_point(parameters, number)
    # Seeded per trial: a study rebuilt from the rows asks for trial n what it asked the first time.
    trial_seed = (seed * 1_000_003 + number) % (2**32)
    sampler = (optuna.samplers.TPESampler(seed=trial_seed, n_startup_trials=min(10, max(2, len(parameters) * 3)))
               if method == "tpe" else optuna.samplers.RandomSampler(seed=trial_seed))
    study = build(parameters, trials, metric=metric, sampler=sampler)
    trial = study.ask({key: distribution(space) for key, space in parameters.items()})
    return _decoded(parameters, trial.params)


def should_prune(parameters: dict[str, dict], trials: list[TrialRecord], *, metric: str, early_stop: dict,
                 number: int, epoch: int) -> bool:
    """Whether ASHA prunes trial `number` now that it has reported `epoch` (the others as they stand)."""
    if epoch not in _steps_upto(early_stop, epoch):
        return False
    asked = next((t for t in trials if t.number == number), None)
    if asked is not None and asked.state == "running" and epoch in asked.curve and not _finite(asked.curve[epoch]):
        # A NaN or infinite loss is stored as None. Optuna prunes a NaN at a rung; left out of the curve, it
        # would instead have the trial's previous rung decided again. A metric never measured (no
        # validation split) has no earlier value, and prunes nothing.
        return any(_finite(v) for e, v in asked.curve.items() if e < epoch)
    study = build(parameters, trials, metric=metric, early_stop=early_stop, leave_running=number)
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.user_attrs["number"] == number)
    if frozen.state != TrialState.RUNNING:
        return False
    return study.pruner.prune(study, frozen)


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def importance(parameters: dict[str, dict], trials: list[TrialRecord], *, metric: str) -> dict[str, float] | None:
    """Each parameter's share of the metric's variance over the finished trials (Optuna's fANOVA); None until
    there are enough of them to say."""
    finished = [t for t in trials if t.state == "complete"]
    varied = [k for k in parameters if len({repr(t.params.get(k)) for t in finished}) > 1]
    if len(finished) < 4 or not varied:
        return None
    study = build(parameters, finished, metric=metric)
    try:
        return optuna.importance.get_param_importances(
            study, params=varied, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError) as exc:  # too few distinct values for the evaluator
        log.info("no parameter importance yet: %s", exc)
        return None
