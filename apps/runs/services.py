"""Writes for runs: start, cancel, annotate, give back to the queue, and the reaper's share.

What happens inside a worker while a run trains lives in `training.py`.
"""
import logging
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.datasets.selectors import number_of_classes
from apps.experiments.services import config_validate
from apps.teams.selectors import team_usage
from dlstudio import jobs, storage
from workers import broker, engine
from workers.witness import vanished

from .models import Run, VersionEvaluation
from .selectors import starting_run

MAX_TAGS = 20
TRAIN_TASK = "runs.train"
EVALUATE_TASK = "runs.evaluate"
# An evaluation has no heartbeat (seconds to minutes): one not finished this long after it was queued (its
# worker was killed, or it waited behind long runs) may be asked for again.
EVALUATION_GIVE_UP_AFTER = timezone.timedelta(hours=1)
# What a training worker's witness writes in its claim's folder when the worker vanishes mid-job.
VANISHED_NOTE = "vanished.json"

log = logging.getLogger(__name__)


@transaction.atomic
def run_start(*, experiment, user, overrides: dict | None = None, sweep=None, trial_number: int | None = None,
              trial_params: dict | None = None) -> Run:
    """A queued run of the experiment (a trial of `sweep`, when given); its task is sent once the row is
    committed."""
    dataset = experiment.dataset
    config = config_validate(experiment.config, overrides, dataset=dataset)
    if dataset is None or not dataset.is_ready:
        raise ValidationError("The experiment's dataset is gone or not ready; pick another dataset.",
                              code="dataset")
    _check_room(experiment.team)
    parent = starting_run(user, config)
    weights_file = experiment.weights_file if config.get("pretrained") == "imagenet" else None
    run = Run.objects.create(experiment=experiment, team=experiment.team, dataset=dataset, created_by=user,
                             dataset_hash=dataset.content_hash, parent=parent, config=config, arch=config["arch"],
                             epochs=config["epochs"], weights_file=weights_file, queued_at=timezone.now(), sweep=sweep,
                             trial_number=trial_number, trial_params=trial_params)
    run.checkpoint_dir = storage.new_checkpoint_dir(run.pk)
    Run.objects.filter(pk=run.pk).update(checkpoint_dir=run.checkpoint_dir)
    broker.send_on_commit(TRAIN_TASK, run.pk)
    return run


def _check_room(team) -> None:
    """A team already at its storage quota starts no run: its first checkpoint would fail it (the training
    job checks each epoch's checkpoints against the quota, `training.Tracker.room_for`)."""
    usage = team_usage(team)
    if usage.total >= usage.quota:
        raise ValidationError(f"This run could not save a checkpoint: {usage.summary()}; delete datasets, runs or "
                              "weights files first, or ask an administrator to raise the quota.", code="storage")


def run_cancel(*, run: Run) -> Run:
    """A queued run is cancelled at once; a running one is asked to stop and checkpoints first.

    The flag comes first, then a queued run ends: whatever the worker does meanwhile (give the run back
    to the queue, lose it), the flag is on the row it finds, and no path re-queues a run that carries it.
    """
    Run.objects.filter(pk=run.pk, status__in=Run.ACTIVE_STATUSES).update(cancel_requested=True)
    Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
        status=Run.Status.CANCELLED, finished_at=timezone.now(), eta_seconds=None)
    run.refresh_from_db()
    return run


def run_annotate(*, run: Run, notes: str | None = None, tags: list[str] | None = None) -> Run:
    fields = []
    if notes is not None:
        run.notes = notes[:10_000]
        fields.append("notes")
    if tags is not None:
        cleaned = []
        for tag in tags:
            tag = str(tag).strip()[:40]
            if tag and tag not in cleaned:
                cleaned.append(tag)
        if len(cleaned) > MAX_TAGS:
            raise ValidationError(f"A run can carry at most {MAX_TAGS} tags.", code="tags")
        run.tags = cleaned
        fields.append("tags")
    if fields:
        run.save(update_fields=fields)
    return run


def run_requeue(*, run_id: int, lease: str, last_checkpoint: str) -> bool:
    """Give a run back to the queue (its worker is shutting down), to resume from `last_checkpoint`; a run
    asked to stop meanwhile ends cancelled instead."""
    mine = Run.objects.filter(pk=run_id, lease_owner=lease, status=Run.Status.RUNNING)
    now = timezone.now()
    if mine.filter(cancel_requested=True).update(status=Run.Status.CANCELLED, lease_owner="", eta_seconds=None,
                                                 finished_at=now, last_checkpoint=last_checkpoint):
        return False
    if mine.filter(cancel_requested=False).update(status=Run.Status.QUEUED, lease_owner="", eta_seconds=None,
                                                  queued_at=now, last_checkpoint=last_checkpoint):
        broker.send_on_commit(TRAIN_TASK, run_id)
        return True
    return False


def runs_reap(*, now=None) -> dict:
    """Re-queue runs whose worker went silent, to resume from their last checkpoint; end cancelled runs.

    A run is lost when its heartbeat is older than DLSTUDIO_STALE_AFTER. It goes back to the queue
    with attempt + 1, up to Run.MAX_ATTEMPTS; then it fails with the reason. An attempt whose worker was
    killed (the witness of its claim noted the process vanish mid-job, `workers/witness.py`) also counts in
    `killed_attempts`: after Run.MAX_KILLS the run fails as most likely too big for the memory, rather than
    killing another worker. A run asked to stop is
    never re-queued: queued, it ends cancelled at once; running, as soon as its heartbeat has missed a
    few beats (its worker died), without waiting for the stale horizon. Each change is one conditional
    UPDATE on what it saw, so two reapers never both act on a run; a row another transaction holds
    locked is left for the next round (`jobs.update_unlocked`).
    """
    now = now or timezone.now()
    horizon = now - timezone.timedelta(seconds=settings.STALE_AFTER)
    silent = now - timezone.timedelta(seconds=3 * jobs.beat_interval())
    counts = {"requeued": 0, "failed": 0, "cancelled": 0}
    counts["cancelled"] += jobs.update_unlocked(
        Run.objects.filter(status=Run.Status.QUEUED, cancel_requested=True),
        status=Run.Status.CANCELLED, finished_at=now, eta_seconds=None)
    counts["cancelled"] += jobs.update_unlocked(
        Run.objects.filter(status=Run.Status.RUNNING, cancel_requested=True, heartbeat_at__lt=silent),
        status=Run.Status.CANCELLED, lease_owner="", finished_at=now, eta_seconds=None)
    stale = Run.objects.filter(status=Run.Status.RUNNING, cancel_requested=False, heartbeat_at__lt=horizon)
    for run in stale.only("pk", "attempt", "killed_attempts", "heartbeat_at", "lease_owner", "fence",
                          "checkpoint_dir", "config", "dataset"):
        same = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING, cancel_requested=False,
                                  heartbeat_at=run.heartbeat_at)
        killed = run.killed_attempts + (1 if _was_killed(run) else 0)
        if killed >= Run.MAX_KILLS:
            counts["failed"] += jobs.update_unlocked(
                same, status=Run.Status.FAILED, lease_owner="", finished_at=now, eta_seconds=None,
                killed_attempts=killed, error=killed_sentence(run))
        elif run.attempt >= Run.MAX_ATTEMPTS:
            counts["failed"] += jobs.update_unlocked(
                same, status=Run.Status.FAILED, lease_owner="", finished_at=now, eta_seconds=None,
                killed_attempts=killed,
                error=(f"The run lost its worker {run.attempt} times (it stopped sending heartbeats, "
                       "for example because it was killed or ran out of memory); it was given up."))
        elif jobs.update_unlocked(same, status=Run.Status.QUEUED, lease_owner="", attempt=F("attempt") + 1,
                                  killed_attempts=killed, eta_seconds=None, queued_at=now):
            counts["requeued"] += 1
            broker.send_on_commit(TRAIN_TASK, run.pk)
    return counts


def _was_killed(run: Run) -> bool:
    """Whether the witness of the run's current claim saw its worker vanish mid-job (workers/witness.py):
    killed (SIGKILL, the out-of-memory killer's signal) rather than stopped or cut off. With an object store
    the note is read from there, where the witness on the worker's machine put it."""
    if run.fence <= 0:
        return False
    try:
        note = storage.local(f"{run.checkpoint_dir}/claim-{run.fence}/{VANISHED_NOTE}")
    except FileNotFoundError:
        return False
    except Exception:  # the store does not answer: counted as a lost worker, which MAX_ATTEMPTS still bounds
        log.warning("could not read run %s's witness note from the object store", run.pk, exc_info=True)
        return False
    return vanished(note) is not None


def killed_sentence(run: Run) -> str:
    """Why a run whose workers were killed Run.MAX_KILLS times is given up, with its memory estimate."""
    need = ""
    dataset = run.dataset
    if dataset is not None and dataset.is_ready:
        try:
            memory = engine.estimate_run_bytes(run.config, num_classes=max(1, number_of_classes(dataset.pk)),
                                               channels=dataset.channels, image_size=dataset.image_size)
            need = f" (this config needs about {memory.gigabytes:.1f} GB)"
        except (engine.ConfigError, ValueError):  # a config of an older version; the sentence stands without
            pass
    return (f"Its worker was killed twice while training it, most likely for lack of memory{need}; lower "
            "batch_size, hidden_units or the image size.")


def runs_resend_lost(*, now=None) -> int:
    """Send the training task again for queued runs whose message the broker lost; returns how many.

    Redis restarted without its data (or a publish failed while it was down) leaves runs that are
    `queued` in the database with nothing in the `train` queue: nobody would ever train them. A run
    queued longer than DLSTUDIO_STALE_AFTER whose message is neither waiting in the queue nor held
    by a worker gets a new one. A run waiting its turn in a long queue is left alone, since its
    message is there. Each re-send is one conditional UPDATE of `queued_at`, so two reapers never
    both send; a duplicate would be harmless anyway (the claim makes a second delivery a no-op).
    """
    now = now or timezone.now()
    horizon = now - timezone.timedelta(seconds=settings.STALE_AFTER)
    waiting = dict(Run.objects.filter(status=Run.Status.QUEUED, cancel_requested=False, queued_at__lt=horizon)
                   .values_list("pk", "queued_at"))
    resent = 0
    for pk in broker.lost_messages("train", TRAIN_TASK, waiting) if waiting else []:
        if Run.objects.filter(pk=pk, status=Run.Status.QUEUED, queued_at=waiting[pk]).update(queued_at=now):
            log.warning("run %s was queued at %s but its message is not in the broker; sending it again",
                        pk, waiting[pk])
            broker.send_on_commit(TRAIN_TASK, pk)
            resent += 1
    return resent


LEFTOVER_AGE = 3600  # seconds: a temporary file this old belongs to no live save


def runs_sweep(*, now: float | None = None) -> dict:
    """Remove checkpoint files that no run will read: in the folders of claims that lost their run (or of
    runs that ended), every file the row does not name, and the folder when it names none; folders of runs
    that no longer exist; and the temporaries of saves that never finished (a worker killed mid-write) once
    they are an hour old."""
    now = time.time() if now is None else now
    removed = {"claims": 0, "files": 0, "runs": 0, "temporaries": 0}
    root = settings.DATA_DIR / "runs"
    folders = {f"runs/{path.name}": path for path in root.iterdir() if path.is_dir()} if root.is_dir() else {}
    rows = {row["checkpoint_dir"]: row for row in Run.objects.filter(checkpoint_dir__in=list(folders)).values(
        "checkpoint_dir", "status", "fence", "last_checkpoint", "best_checkpoint")}
    for relative, folder in folders.items():
        row = rows.get(relative)
        if row is None:
            if _idle(folder, LEFTOVER_AGE, now):  # a run that no longer exists, not one being created now
                storage.remove(relative)
                removed["runs"] += 1
            continue
        named = {row["last_checkpoint"], row["best_checkpoint"]} - {""}
        for claim in folder.glob("claim-*"):
            if not _past_claim(claim.name, row):
                continue
            inside = f"{relative}/{claim.name}/"
            if not any(name.startswith(inside) for name in named):
                storage.remove(inside)
                removed["claims"] += 1
                continue
            for path in claim.glob("*.pt"):  # a killed claim's last checkpoints beside the best one it left
                if f"{inside}{path.name}" not in named:
                    storage.remove(f"{inside}{path.name}")
                    removed["files"] += 1
        for temporary in storage.unchanged_for(relative, LEFTOVER_AGE, ".*.tmp", now=now):
            storage.remove(temporary)
            removed["temporaries"] += 1
    return removed


def _past_claim(name: str, row: dict) -> bool:
    """A claim folder no worker writes to as the run's: an earlier claim than the row's, or the last one of
    a run that ended. A claim newer than the row as read is being made right now, and stays."""
    number = name.removeprefix("claim-")
    if not number.isdigit():
        return False
    return int(number) < row["fence"] or (int(number) == row["fence"] and row["status"] not in Run.ACTIVE_STATUSES)


def _idle(folder, seconds: float, now: float) -> bool:
    """Nothing in `folder` (nor the folder itself) has changed for `seconds`."""
    try:
        return all(now - path.stat().st_mtime > seconds for path in [folder, *folder.rglob("*")])
    except FileNotFoundError:  # changing right now
        return False


@transaction.atomic
def run_evaluate_on(*, run: Run, dataset) -> VersionEvaluation:
    """Queue the run's best weights to be scored on `dataset` (a ready dataset of the run's team with the
    same classes); asking again for the same version scores it again. ValidationError says why not."""
    if run.status != Run.Status.SUCCEEDED or not run.best_checkpoint:
        raise ValidationError("Only a run that succeeded has best weights to evaluate; wait for it to finish.",
                              code="run")
    if dataset.team_id != run.team_id or not dataset.is_ready:
        raise ValidationError("Pick a ready dataset of the run's team.", code="dataset")
    trained_on = list(run.evaluation.classes) if hasattr(run, "evaluation") else []
    offered = list(dataset.classes.values_list("name", flat=True))
    missing, extra = [c for c in trained_on if c not in offered], [c for c in offered if c not in trained_on]
    if missing or extra or not trained_on:
        parts = ([f"lacks {', '.join(repr(c) for c in missing)}"] if missing else []) + \
                ([f"adds {', '.join(repr(c) for c in extra)}"] if extra else [])
        raise ValidationError(f"The run knows other classes than dataset {dataset.name} v{dataset.version}: it "
                              f"{' and '.join(parts) or 'has no evaluation to compare with'}; evaluate on a version "
                              "with the same classes.", code="dataset")
    now = timezone.now()
    existing = VersionEvaluation.objects.select_for_update().filter(run=run, dataset=dataset).first()
    active = (VersionEvaluation.Status.QUEUED, VersionEvaluation.Status.RUNNING)
    if existing and existing.status in active and existing.created > now - EVALUATION_GIVE_UP_AFTER:
        raise ValidationError("This run is already being evaluated on that version; wait for it to finish.",
                              code="dataset")
    if existing:
        existing.delete()
    evaluation = VersionEvaluation.objects.create(run=run, dataset=dataset, dataset_hash=dataset.content_hash,
                                                  dataset_version=dataset.version)
    broker.send_on_commit(EVALUATE_TASK, evaluation.pk)
    return evaluation
