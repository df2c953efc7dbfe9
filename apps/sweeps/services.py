"""Writes for sweeps: start one, keep its trials coming, cancel it, adopt its best run's config.

A sweep keeps at most `max_parallel` trials queued or running. `sweep_advance` starts the next ones
when a trial ends: the training job asks for it as its run ends (`sweeps.advance`), and celery beat
asks for every running sweep every few seconds (`sweeps.advance_all`), which covers the runs that end
elsewhere (the reaper, a cancel) and a message lost with Redis. The train queue is first come, first
served, so a run someone else starts waits for at most one trial slot, never for the whole sweep.
"""
from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.experiments.services import experiment_set_config
from apps.runs.selectors import trials_of
from apps.runs.services import run_cancel, run_start
from apps.teams.permissions import can_edit, require_editor

from . import spaces, study
from .models import Sweep
from .selectors import best_of, records_of

ADVANCE_TASK = "sweeps.advance"

log = logging.getLogger(__name__)


@transaction.atomic
def sweep_create(*, user, experiment, name: str, method: str, parameters, trials=None, max_parallel=2,
                 metric="val_acc", early_stop=None, seed: int = 0) -> Sweep:
    """A running sweep of the experiment, its first trials queued once the row is committed."""
    require_editor(user, experiment.team)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationError("Give the sweep a name of 1 to 200 characters.", code="name")
    dataset = experiment.dataset
    if dataset is None or not dataset.is_ready:
        raise ValidationError("The experiment's dataset is gone or not ready; pick another dataset.",
                              code="experiment")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        raise ValidationError("seed must be a whole number from 0 to 2147483647.", code="seed")
    checked = spaces.validate(user=user, experiment_config=experiment.config, method=method, parameters=parameters,
                              trials=trials, max_parallel=max_parallel, metric=metric, early_stop=early_stop,
                              dataset=dataset)
    sweep = Sweep.objects.create(team=experiment.team, experiment=experiment, created_by=user, name=name,
                                 seed=seed, **checked)
    _fill(sweep, [])
    return sweep


def sweep_advance(sweep_id: int) -> int:
    """Start the trials the sweep has room for; end it once every trial has ended. Returns how many started.

    One at a time per sweep: the row is locked (PostgreSQL; SQLite's write transactions are serial
    anyway), and the trial numbers are unique per sweep, so two callers never start the same trial.
    """
    with transaction.atomic():
        sweep = Sweep.objects.select_for_update().filter(pk=sweep_id, status=Sweep.Status.RUNNING).first()
        if sweep is None:
            return 0
        runs = trials_of(sweep.pk)
        active = [r for r in runs if r.status in ("queued", "running")]
        if len(runs) >= sweep.trials and not active:
            _finish(sweep, runs)
            return 0
        if sweep.created_by is None or not can_edit(sweep.created_by, sweep.team):
            return _give_up(sweep, "whoever started it can no longer start runs in this team")
        try:
            return _fill(sweep, runs)
        except ValidationError as exc:  # the experiment's dataset went away, a run it starts from is gone
            return _give_up(sweep, exc.messages[0])


def _give_up(sweep: Sweep, why: str) -> int:
    """The sweep ends failed with the reason; trials already running finish as they are."""
    Sweep.objects.filter(pk=sweep.pk).update(status=Sweep.Status.FAILED, finished_at=timezone.now(),
                                             error=f"The sweep could not start its next trial: {why}")
    return 0


def _fill(sweep: Sweep, runs: list) -> int:
    active = sum(r.status in ("queued", "running") for r in runs)
    room = min(sweep.max_parallel - active, sweep.trials - len(runs))
    records = records_of(sweep, runs) if room > 0 and runs else []
    for number in range(len(runs), len(runs) + max(room, 0)):
        params = study.next_params(sweep.parameters, records, method=sweep.method, metric=sweep.metric,
                                   seed=sweep.seed, number=number)
        run_start(experiment=sweep.experiment, user=sweep.created_by, overrides=spaces.overrides_of(params),
                  sweep=sweep, trial_number=number, trial_params=params)
        records.append(study.TrialRecord(number=number, params=params, state="running"))
    return max(room, 0)


def _finish(sweep: Sweep, runs: list) -> None:
    ended = any(r.status == "succeeded" for r in runs)
    Sweep.objects.filter(pk=sweep.pk, status=Sweep.Status.RUNNING).update(
        status=Sweep.Status.SUCCEEDED if ended else Sweep.Status.FAILED, finished_at=timezone.now(),
        error="" if ended else "No trial succeeded; open a trial to see why it failed.")


def sweeps_advance_all() -> int:
    """`sweep_advance` for every running sweep (celery beat); how many trials started."""
    return sum(sweep_advance(pk) for pk in Sweep.objects.filter(status=Sweep.Status.RUNNING)
               .values_list("pk", flat=True))


def sweep_cancel(*, sweep: Sweep, user) -> Sweep:
    """No trial starts any more; the queued ones end at once, the running ones within seconds."""
    require_editor(user, sweep.team)
    Sweep.objects.filter(pk=sweep.pk, status=Sweep.Status.RUNNING).update(
        status=Sweep.Status.CANCELLED, finished_at=timezone.now())
    for run in trials_of(sweep.pk):
        if run.status in ("queued", "running"):
            run_cancel(run=run)
    sweep.refresh_from_db()
    return sweep


def sweep_adopt_best(*, sweep: Sweep, user):
    """Make the best trial's config the experiment's own; returns that run."""
    require_editor(user, sweep.team)
    best = best_of(sweep, trials_of(sweep.pk))
    if best is None:
        raise ValidationError("No trial has a result yet; wait for one to finish.", code="sweep")
    experiment_set_config(experiment=sweep.experiment, user=user, config=best.config)
    return best
