"""A sweep's search space and settings, checked before anything is queued; and the presets of the form.

Every refusal is a ValidationError whose code names the field (`parameters.lr`, `max_parallel`), so
the API answers 400 with that field and the form shows the sentence beside it.
"""
from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError

from apps.experiments.services import config_validate
from apps.runs.selectors import starting_run

from .study import METRICS, grid_size

MAX_TRIALS = 1000
MAX_PARALLEL = 64
MAX_VALUES = 1000
SPACE_KINDS = ("values", "uniform", "log_uniform", "int")
# Where a run trains is the worker's business, not a question a sweep asks.
NOT_SWEPT = {"device"}


def overrides_of(params: dict[str, Any]) -> dict[str, Any]:
    """{"augment.hflip": true} as a run's overrides: {"augment": {"hflip": true}}."""
    overrides: dict[str, Any] = {}
    for key, value in params.items():
        head, _, rest = key.partition(".")
        if rest:
            overrides.setdefault(head, {})[rest] = value
        else:
            overrides[head] = value
    return overrides


def validate(*, user, experiment_config: dict, method: str, parameters: Any, trials: Any, max_parallel: Any,
             metric: Any, early_stop: Any, dataset=None) -> dict:
    """The sweep's settings, normalised; ValidationError naming the first field that is wrong. Each value is
    checked as its trial's run would be, against `dataset`'s images too (the memory estimate)."""
    if method not in ("grid", "random", "tpe"):
        raise ValidationError("method must be grid, random or tpe.", code="method")
    if not isinstance(parameters, dict) or not parameters:
        raise ValidationError("Give at least one parameter to search, e.g. {\"lr\": {\"log_uniform\": "
                              "[0.0001, 0.1]}}.", code="parameters")
    if len(parameters) > 20:
        raise ValidationError("Search at most 20 parameters at once.", code="parameters")
    spaces = {key: _space(user, experiment_config, key, space, method, dataset) for key, space in parameters.items()}
    if method == "grid":
        size = grid_size(spaces)
        if size > MAX_TRIALS:
            raise ValidationError(f"This grid has {size:,} trials; a sweep may have at most {MAX_TRIALS:,}. "
                                  "Use fewer values, or a random or tpe sweep.", code="parameters")
        trials = size
    elif not _is_int(trials) or not 1 <= trials <= MAX_TRIALS:
        raise ValidationError(f"trials must be a whole number from 1 to {MAX_TRIALS:,}.", code="trials")
    if not _is_int(max_parallel) or not 1 <= max_parallel <= MAX_PARALLEL:
        raise ValidationError(f"max_parallel must be a whole number from 1 to {MAX_PARALLEL}.", code="max_parallel")
    if metric not in METRICS:
        raise ValidationError(f"metric must be one of {', '.join(METRICS)}.", code="metric")
    return {"method": method, "parameters": spaces, "trials": trials, "max_parallel": max_parallel,
            "metric": metric, "early_stop": _early_stop(early_stop)}


def _space(user, experiment_config: dict, key: Any, space: Any, method: str, dataset) -> dict:
    field = f"parameters.{key}"
    _check_key(experiment_config, key, field)
    if not isinstance(space, dict) or len(space) != 1 or next(iter(space)) not in SPACE_KINDS:
        raise ValidationError(f"{key}: give one of {{\"values\": [...]}}, {{\"uniform\": [lo, hi]}}, "
                              "{\"log_uniform\": [lo, hi]} or {\"int\": [lo, hi]}.", code=field)
    kind, spec = next(iter(space.items()))
    if kind == "values":
        if not isinstance(spec, list) or not spec:
            raise ValidationError(f"{key}: give at least one value.", code=field)
        if len(spec) > MAX_VALUES:
            raise ValidationError(f"{key}: give at most {MAX_VALUES} values.", code=field)
        for value in spec:
            _check_value(user, experiment_config, key, value, field, dataset)
        return {"values": spec}
    if method == "grid" and kind != "int":
        raise ValidationError(f"{key}: a grid needs a list of values (or an int range), not a {kind} range.",
                              code=field)
    if not isinstance(spec, list) or len(spec) != 2 or not all(_is_number(v) for v in spec):
        raise ValidationError(f"{key}: a range is two numbers, [lo, hi].", code=field)
    lo, hi = spec
    if kind == "int" and not (_is_int(lo) and _is_int(hi)):
        raise ValidationError(f"{key}: an int range is two whole numbers.", code=field)
    if lo == hi:
        raise ValidationError(f"{key}: the range [{lo}, {hi}] is empty; give lo < hi, or {{\"values\": [{lo}]}}.",
                              code=field)
    if lo > hi:
        raise ValidationError(f"{key}: the range [{lo}, {hi}] is inverted; give it as [{hi}, {lo}].", code=field)
    if kind == "log_uniform" and lo <= 0:
        raise ValidationError(f"{key}: a log range must stay above 0 (it starts at {lo}); start it at a small "
                              "positive number such as 1e-5.", code=field)
    if kind == "int" and hi - lo + 1 > MAX_VALUES and method == "grid":
        raise ValidationError(f"{key}: a grid over more than {MAX_VALUES} integers is too large.", code=field)
    for value in (lo, hi):
        _check_value(user, experiment_config, key, value, field, dataset)
    if kind != "int" and _refused(user, experiment_config, key, _inside(kind, lo, hi), dataset):
        # The ends may be whole numbers, but a float range draws fractions in between (epochs 2.27): refused
        # here, not by the first trial's run.
        raise ValidationError(f"{key} takes whole numbers; give an int range, {{\"int\": [{lo}, {hi}]}}.",
                              code=field)
    return {kind: [lo, hi]}


def _inside(kind: str, lo: float, hi: float) -> float:
    """A point strictly inside the range that is not a whole number (nor a round fraction of the range)."""
    if kind == "log_uniform":
        return math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) / math.pi)
    return lo + (hi - lo) / math.pi


def _refused(user, experiment_config: dict, key: str, value: Any, dataset) -> bool:
    try:
        _check_value(user, experiment_config, key, value, key, dataset)
    except ValidationError:
        return True
    return False


def _check_key(config: dict, key: Any, field: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValidationError("A parameter's name must be a config key such as lr.", code="parameters")
    head, _, rest = key.partition(".")
    if head in NOT_SWEPT:
        raise ValidationError(f"{key} cannot be swept: it says where a run trains, not how.", code=field)
    if head not in config or (rest and not (isinstance(config[head], dict) and rest in config[head])):
        raise ValidationError(f"{key} is not a config key; see the training configuration for the keys.",
                              code=field)
    if not rest and isinstance(config[head], dict) and head != "pretrained":
        raise ValidationError(f"{key} is a group of settings; sweep one of them, e.g. {head}."
                              f"{next(iter(config[head]))}.", code=field)


def _check_value(user, experiment_config: dict, key: str, value: Any, field: str, dataset) -> None:
    """A value the run would refuse is refused now, under the sweep's field."""
    try:
        config = config_validate(experiment_config, overrides_of({key: value}), dataset=dataset)
        starting_run(user, config)
    except ValidationError as exc:
        raise ValidationError(f"{key}: {value!r} is not allowed: {exc.messages[0]}", code=field) from None


def _early_stop(early_stop: Any) -> dict | None:
    if early_stop is None:
        return None
    if not isinstance(early_stop, dict) or early_stop.get("method") != "asha":
        raise ValidationError("early_stop must be null or {\"method\": \"asha\", \"min_epochs\": 1, "
                              "\"reduction_factor\": 3}.", code="early_stop")
    unknown = set(early_stop) - {"method", "min_epochs", "reduction_factor"}
    if unknown:
        raise ValidationError(f"early_stop has no setting {sorted(unknown)[0]}.", code="early_stop")
    min_epochs, factor = early_stop.get("min_epochs", 1), early_stop.get("reduction_factor", 3)
    if not _is_int(min_epochs) or not 1 <= min_epochs <= 1000:
        raise ValidationError("early_stop.min_epochs must be a whole number from 1 to 1000.",
                              code="early_stop.min_epochs")
    if not _is_int(factor) or not 2 <= factor <= 10:
        raise ValidationError("early_stop.reduction_factor must be a whole number from 2 to 10.",
                              code="early_stop.reduction_factor")
    return {"method": "asha", "min_epochs": min_epochs, "reduction_factor": factor}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- presets of the start form -------------------------------------------------------------------------

def presets(*, earlier_run: int | None, imagenet: bool) -> dict[str, dict]:
    """{name: {"label", "method", "parameters"}}: the questions most sweeps ask. "Transfer vs scratch"
    offers ImageNet weights when the architecture has them, and an earlier run's when there is one."""
    starts: list = [None]
    if imagenet:
        starts.append("imagenet")
    if earlier_run is not None:
        starts.append({"run": earlier_run})
    return {
        "lr": {"label": "Learning rate (log grid 1e-5…1)", "method": "grid",
               "parameters": {"lr": {"values": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]}}},
        "optimizer": {"label": "Optimizers (SGD, SGD+Nesterov, RMSProp, Adam, AdamW)", "method": "grid",
                      "parameters": {"optimizer": {"values": ["sgd", "sgd_nesterov", "rmsprop", "adam", "adamw"]}}},
        "transfer": {"label": "Transfer vs scratch", "method": "grid",
                     "parameters": {"pretrained": {"values": starts}}},
    }
