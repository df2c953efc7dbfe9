"""Writes for runs: start, cancel, annotate, give back to the queue, and the reaper's share.

What happens inside a worker while a run trains lives in `training.py`.
"""
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.experiments.services import config_validate
from dlstudio import storage
from workers import broker

from .models import Run
from .selectors import starting_run

MAX_TAGS = 20
TRAIN_TASK = "runs.train"

log = logging.getLogger(__name__)


@transaction.atomic
def run_start(*, experiment, user, overrides: dict | None = None) -> Run:
    """A queued run of the experiment; its task is sent once the row is committed."""
    config = config_validate(experiment.config, overrides)
    dataset = experiment.dataset
    if dataset is None or not dataset.is_ready:
        raise ValidationError("The experiment's dataset is gone or not ready; pick another dataset.",
                              code="dataset")
    parent = starting_run(user, config)
    weights_file = experiment.weights_file if config.get("pretrained") == "imagenet" else None
    run = Run.objects.create(experiment=experiment, team=experiment.team, dataset=dataset, created_by=user,
                             parent=parent, config=config, arch=config["arch"], epochs=config["epochs"],
                             weights_file=weights_file, queued_at=timezone.now())
    run.checkpoint_dir = storage.new_checkpoint_dir(run.pk)
    Run.objects.filter(pk=run.pk).update(checkpoint_dir=run.checkpoint_dir)
    broker.send_on_commit(TRAIN_TASK, run.pk)
    return run


def run_cancel(*, run: Run) -> Run:
    """A queued run is cancelled at once; a running one is asked to stop and checkpoints first."""
    cancelled_in_queue = Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
        status=Run.Status.CANCELLED, cancel_requested=True, finished_at=timezone.now(), eta_seconds=None)
    if not cancelled_in_queue:
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(cancel_requested=True)
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


def run_requeue(*, run_id: int, lease: str) -> bool:
    """Give a run back to the queue (its worker is shutting down); it resumes from its checkpoint."""
    if Run.objects.filter(pk=run_id, lease_owner=lease, status=Run.Status.RUNNING).update(
            status=Run.Status.QUEUED, lease_owner="", eta_seconds=None, queued_at=timezone.now()):
        broker.send_on_commit(TRAIN_TASK, run_id)
        return True
    return False


def runs_reap(*, now=None) -> dict:
    """Re-queue runs whose worker went silent, to resume from their last checkpoint.

    A run is lost when its heartbeat is older than DLSTUDIO_STALE_AFTER. It goes back to the queue
    with attempt + 1, up to Run.MAX_ATTEMPTS; then it fails with the reason. Each change is one
    conditional UPDATE on the heartbeat it saw, so two reapers never both act on a run.
    """
    now = now or timezone.now()
    horizon = now - timezone.timedelta(seconds=settings.STALE_AFTER)
    counts = {"requeued": 0, "failed": 0, "cancelled": 0}
    stale = Run.objects.filter(status=Run.Status.RUNNING, heartbeat_at__lt=horizon)
    for run in stale.only("pk", "attempt", "heartbeat_at", "cancel_requested", "lease_owner"):
        same = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING, heartbeat_at=run.heartbeat_at)
        if run.cancel_requested:
            counts["cancelled"] += same.update(status=Run.Status.CANCELLED, lease_owner="", finished_at=now,
                                               eta_seconds=None)
        elif run.attempt >= Run.MAX_ATTEMPTS:
            counts["failed"] += same.update(
                status=Run.Status.FAILED, lease_owner="", finished_at=now, eta_seconds=None,
                error=(f"The run lost its worker {run.attempt} times (it stopped sending heartbeats, "
                       "for example because it was killed or ran out of memory); it was given up."))
        elif same.update(status=Run.Status.QUEUED, lease_owner="", attempt=F("attempt") + 1, eta_seconds=None,
                         queued_at=now):
            counts["requeued"] += 1
            broker.send_on_commit(TRAIN_TASK, run.pk)
    return counts


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
