"""Reads of sweeps, always scoped to the user's teams (a foreign id is a 404), and what their trials say."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.runs.selectors import curves_of, runs_of_experiment, trials_of
from apps.teams.selectors import scoped
from workers.engine import IMAGENET_ARCHS

from . import study
from .forms import SweepForm
from .models import Sweep
from .spaces import presets


def sweeps_for(user) -> QuerySet[Sweep]:
    return scoped(Sweep.objects.all(), user).select_related("experiment", "team", "created_by")


def sweep_for(user, sweep_id) -> Sweep:
    sweep = sweeps_for(user).filter(pk=sweep_id).first()
    if sweep is None:
        raise Http404("No such sweep.")
    return sweep


def sweeps_of_experiment(experiment) -> QuerySet[Sweep]:
    return Sweep.objects.filter(experiment=experiment).order_by("-created", "-id")


def trial_state(run) -> str:
    """A run as Optuna sees a trial: running (queued too), complete, pruned or failed (cancelled too)."""
    if run.status in ("queued", "running"):
        return "running"
    if run.status == "succeeded":
        return "pruned" if run.pruned else "complete"
    return "failed"


def records_of(sweep: Sweep, runs: list | None = None) -> list[study.TrialRecord]:
    runs = trials_of(sweep.pk) if runs is None else runs
    curves = curves_of([r.pk for r in runs], sweep.metric)
    return [study.TrialRecord(number=r.trial_number, params=r.trial_params or {}, state=trial_state(r),
                              curve=curves[r.pk]) for r in runs]


def trial_should_prune(run, metrics: dict) -> bool:
    """For the training job, with each epoch of a sweep's trial before it is recorded: whether ASHA ends the
    trial after it. The epoch and the answer are then written together, so a crash never leaves an epoch
    recorded whose rung was never judged."""
    sweep = Sweep.objects.filter(pk=run.sweep_id).first()
    epoch = metrics["epoch"]
    if sweep is None or not sweep.early_stop or epoch >= run.epochs:
        return False
    records = records_of(sweep)
    for record in records:
        if record.number == run.trial_number:
            record.curve[epoch] = metrics.get(sweep.metric)
    return study.should_prune(sweep.parameters, records, metric=sweep.metric, early_stop=sweep.early_stop,
                              number=run.trial_number, epoch=epoch)


def best_of(sweep: Sweep, runs: list) -> object | None:
    """The ended trial with the best value of the sweep's metric over its epochs (pruned ones included: a
    trial still training may yet change its value, and its config is not a result yet)."""
    direction = study.METRICS[sweep.metric]
    runs = [run for run in runs if run.status == "succeeded"]
    scored = [(record.value(direction), run) for record, run in zip(records_of(sweep, runs), runs)]
    scored = [(value, run) for value, run in scored if value is not None]
    if not scored:
        return None
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda pair: pair[0])[1]


def sweep_summary(sweep: Sweep) -> dict:
    """`GET /api/sweeps/<id>`: the sweep, each trial, the best run, and epochs trained against the budget."""
    runs = trials_of(sweep.pk)
    best = best_of(sweep, runs)
    epochs = {r.pk: r.epochs for r in runs}
    default_epochs = sweep.experiment.config.get("epochs", 10) if sweep.experiment_id else 10
    budget = sum(epochs.values()) + default_epochs * max(0, sweep.trials - len(runs))
    return {
        "id": sweep.pk, "name": sweep.name, "experiment": sweep.experiment_id, "status": sweep.status,
        "method": sweep.method, "metric": sweep.metric, "parameters": sweep.parameters,
        "trials_total": sweep.trials, "max_parallel": sweep.max_parallel, "early_stop": sweep.early_stop,
        "error": sweep.error,
        "trials": [{"run": r.pk, "number": r.trial_number, "params": r.trial_params or {}, "status": r.status,
                    "best_val_acc": r.best_val_acc, "epochs_trained": r.epoch, "epochs": r.epochs,
                    "pruned": r.pruned} for r in runs],
        "best_run": best.pk if best is not None else None,
        "epochs_trained": sum(r.epoch for r in runs), "epochs_budget": budget,
        "created": sweep.created, "finished_at": sweep.finished_at,
    }


def start_form(experiment, data=None):
    """The experiment page's form that starts a sweep (bound to `data` when posted), with the presets
    that fit the experiment: ImageNet weights when its architecture has them, and its best run so far."""
    best = (runs_of_experiment(experiment).filter(status="succeeded", best_val_acc__isnull=False)
            .order_by("-best_val_acc", "-id").values_list("pk", flat=True).first())
    return SweepForm(data, presets=presets(earlier_run=best,
                                           imagenet=experiment.config.get("arch") in IMAGENET_ARCHS))
