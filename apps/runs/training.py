"""A run inside a training worker: claim it, train through the engine, record what happens, let go.

This runs in the `train` worker (one process per GPU) through the job skeleton of `dlstudio.jobs`.
The engine knows nothing of Django; the callbacks here turn its progress into rows.

Fencing (docs/RELIABILITY.md): each claim raises the run's `fence` and writes its checkpoints into a
folder of its own, `<checkpoint_dir>/claim-<fence>/`. An epoch is recorded together with the
checkpoints that hold it, in one write conditional on the lease: the row then names them
(`last_checkpoint`, and `best_checkpoint` with `best_epoch`), and the next claim resumes from what the
row names. A worker that lost its run (stopped, then handed on by the reaper) can still write files
into its own folder when it wakes up, but no row names them and none of its writes lands.
"""
import hashlib
import logging
import math
import os
import sys
import time
import traceback
import uuid
from pathlib import Path

import torch
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from dlstudio import jobs, storage
from dlstudio.version import code_version
from workers import engine

from apps.sweeps.selectors import trial_should_prune
from apps.teams.selectors import team_usage
from workers import broker
from workers.witness import Witness

from .models import EpochMetric, Evaluation, Run
from .selectors import best_checkpoint_path
from .services import VANISHED_NOTE, run_requeue

PROGRESS_EVERY = 2.0
log = logging.getLogger(__name__)


def run_train(*, run_id: int, worker: str) -> str:
    """Train the run if this worker can claim it; returns what became of it (for the task's log)."""
    token = f"{worker}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    now = timezone.now()
    lease = jobs.claim(Run, run_id, where={"status": Run.Status.QUEUED, "cancel_requested": False},
                       changes={"status": Run.Status.RUNNING, "lease_owner": token, "fence": F("fence") + 1,
                                "heartbeat_at": now, "worker": worker, "error": "", "traceback": "",
                                "torch_version": torch.__version__, "code_version": code_version()},
                       held={"lease_owner": token})
    if lease is None:
        return "not claimed"
    Run.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    run = Run.objects.select_related("dataset", "parent", "weights_file").get(pk=run_id)
    claim = f"{run.checkpoint_dir}/claim-{run.fence}"
    # Notes in the claim's folder if this process vanishes mid-job: the reaper reads it (`runs_reap`), on
    # another machine with an object store, where the witness puts it.
    note = f"{claim}/{VANISHED_NOTE}"
    witness = Witness(storage.absolute(note), then=_put_command(note) if storage.in_object_store() else ())
    try:
        with jobs.working(f"run-{run_id}", lease):
            return _train(run, lease, token, claim)
    finally:
        witness.done()
        _tidy(run_id, claim)
        if run.sweep_id is not None:  # its slot may be free now: the sweep's next trial
            broker.send_on_commit("sweeps.advance", run.sweep_id)


def _put_command(name: str) -> list[str]:
    return [sys.executable, str(settings.BASE_DIR / "manage.py"), "storage_push", name]


def _tidy(run_id: int, claim: str) -> None:
    """The files of this claim that the row does not name when it ends: read by nobody, ever. With an object
    store, the named ones are there, and this machine's copies go too."""
    named = set(Run.objects.filter(pk=run_id).values_list("last_checkpoint", "best_checkpoint").get())
    folder = storage.absolute(claim)
    for path in folder.glob("*.pt") if folder.is_dir() else ():
        if storage.relative(path) not in named:
            storage.remove(storage.relative(path))
    if storage.in_object_store():
        storage.drop_local(claim)
    elif folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


class Tracker:
    """The engine's callbacks: progress, cancellation, and each epoch recorded with its checkpoints."""

    def __init__(self, run: Run, lease: jobs.Lease, claim: str):
        self.run, self.lease, self.claim = run, lease, claim
        self.named = {run.last_checkpoint, run.best_checkpoint} - {""}  # what the row names now
        self.checkpoint_bytes = run.checkpoint_bytes  # theirs, counted in the team's usage
        self.stop_reason: str | None = None
        self._last = time.monotonic()
        self._started, self._start_fraction = time.monotonic(), None

    def on_batch(self, progress) -> bool:
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY:
            return False
        self._last = now
        fraction = progress.fraction
        if self._start_fraction is None:
            self._start_fraction, self._started = fraction, now
        done = fraction - self._start_fraction
        eta = (now - self._started) * (1 - fraction) / done if done > 0 else None
        if not self.lease.update(progress=fraction, eta_seconds=eta):
            self.stop_reason = "lost"  # the reaper gave the run to another worker
        elif cancel_requested(self.run):
            self.stop_reason = "cancelled"
        elif jobs.shutdown_requested.is_set():
            self.stop_reason = "shutdown"
        return self.stop_reason is not None

    def on_checkpoint(self, metrics: dict, *, last: Path, best: Path | None) -> bool:
        """Record the epoch with its files; True when the run's sweep prunes it here (the engine halts)."""
        metrics = {k: (v if v is None or math.isfinite(v) else None) for k, v in metrics.items()}
        fields = {"epoch": metrics["epoch"], "progress": metrics["epoch"] / self.run.epochs,
                  "last_checkpoint": storage.relative(last)}
        if best is not None:
            fields.update(best_epoch=metrics["epoch"], best_val_acc=metrics["val_acc"],
                          best_checkpoint=storage.relative(best))
        # Its sweep's early stop judges the epoch in the same write that records it: a resumed claim of a
        # pruned trial halts at once (`halt_after`), and no recorded epoch goes unjudged.
        pruned = self.run.sweep_id is not None and trial_should_prune(self.run, metrics)
        if pruned:
            fields["pruned"] = True
        fields["checkpoint_bytes"] = self.room_for(fields["last_checkpoint"],
                                                   fields.get("best_checkpoint") or self.best_named())
        self.store(fields["last_checkpoint"], fields.get("best_checkpoint"))
        # By epoch number: an epoch trained again after a crash replaces its own row.
        if self.lease.write(lambda: EpochMetric.objects.update_or_create(
                run_id=self.run.pk, epoch=metrics["epoch"], defaults={**metrics, "attempt": self.run.attempt}),
                **fields):
            now_named = {fields["last_checkpoint"], fields.get("best_checkpoint") or self.best_named()}
            self.forget(self.named - now_named)
            self.named = now_named
            return pruned
        return False

    def room_for(self, *files) -> int:
        """The bytes of the checkpoints the row is about to name; raises CheckpointError (the run fails with
        it, and the files it does not name go) when they would take the team past its storage quota."""
        size = sum(storage.size(name) for name in set(files) - {None, ""})
        usage = team_usage(self.run.team)
        if usage.over_by(size, already=self.checkpoint_bytes):
            raise engine.CheckpointError(usage.refusal(
                size, what="This run's checkpoints would take", already=self.checkpoint_bytes,
                change="delete datasets, runs or weights files of the team, or train a smaller model"))
        self.checkpoint_bytes = size
        return size

    def store(self, *names: str | None) -> None:
        """Put this epoch's checkpoints in the object store before the row names them: a worker on another
        machine resumes from there. The engine still writes beside them, so this machine keeps its copies."""
        for name in names:
            if name and name not in self.named:
                storage.put(name, keep=True)

    def best_named(self) -> str | None:
        return next((name for name in self.named if Path(name).name.startswith("best")), None)

    def forget(self, files: set[str]) -> None:
        """This claim's files that the row no longer names: nobody reads them again (the row only ever names
        newer ones, and this worker still holds the run), so they go at once. An earlier claim's are left to
        the sweep of its folder (`runs_sweep`), except in an object store, which no machine sweeps."""
        for name in files:
            if name.startswith(f"{self.claim}/") or storage.in_object_store():
                storage.remove(name)


def cancel_requested(run: Run) -> bool:
    return Run.objects.filter(pk=run.pk, cancel_requested=True).exists()


def _train(run: Run, lease: jobs.Lease, token: str, claim: str) -> str:
    if run.dataset is None or not run.dataset.pack_path:
        return _fail(lease, "The dataset of this run was deleted; start the experiment on another dataset.")
    out_dir = storage.absolute(claim)
    tracker = Tracker(run, lease, claim)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)  # inside: a full disk fails the run with its sentence
        device = engine.resolve_device(run.config.get("device", "auto"))
        lease.update(device=_device_name(device), environment=engine.environment(
            device, code=code_version(), deterministic=run.config.get("deterministic", False)))
        result = engine.fit(
            pack=storage.local(run.dataset.pack_path), config=run.config, out_dir=out_dir,
            on_batch=tracker.on_batch, on_checkpoint=tracker.on_checkpoint, file_per_epoch=True,
            resume_from=storage.local(run.last_checkpoint) if run.last_checkpoint else None,
            best_from=storage.local(run.best_checkpoint) if run.best_checkpoint else None,
            init_checkpoint=best_checkpoint_path(run.parent) if run.parent else None,
            halt_after=run.epoch if run.pruned else None,
            imagenet_weights=storage.local(run.weights_file.path) if run.weights_file else None)
    except Exception as exc:  # every failure ends the run with a sentence; the traceback goes beside it
        sentence = jobs.failure_sentence(exc, doing="Training", subject="this run", again="start the run again")
        return _fail(lease, sentence, traceback.format_exc())

    if result.outcome == "stopped":
        # A stop mid-epoch wrote `last.pt` where the run is now: the run's to resume from.
        last = storage.relative(result.last_checkpoint)
        try:
            tracker.store(last)
        except Exception as exc:  # the store is down: the run resumes from its last recorded epoch instead
            log.warning("run %s: its stopping point could not be stored (%s)", run.pk, exc)
            last = Run.objects.values_list("last_checkpoint", flat=True).get(pk=run.pk)
        if tracker.stop_reason == "cancelled":
            lease.update(status=Run.Status.CANCELLED, finished_at=timezone.now(), eta_seconds=None, lease_owner="",
                         last_checkpoint=last)
        elif tracker.stop_reason == "shutdown":
            run_requeue(run_id=run.pk, lease=token, last_checkpoint=last)
        return tracker.stop_reason or "stopped"
    if result.outcome == "failed":
        return _fail(lease, result.error)
    if cancel_requested(run):  # asked while the best weights were being evaluated
        lease.update(status=Run.Status.CANCELLED, finished_at=timezone.now(), eta_seconds=None, lease_owner="")
        return "cancelled"
    best = Path(result.checkpoint) if result.checkpoint else None
    evaluation = result.evaluation and {
        **{key: result.evaluation[key] for key in Evaluation.REPORT},
        "checkpoint": storage.relative(best), "checkpoint_sha256": _sha256(best)}
    lease.write(lambda: evaluation and Evaluation.objects.update_or_create(run_id=run.pk, defaults=evaluation),
                status=Run.Status.SUCCEEDED, progress=1.0, eta_seconds=None, finished_at=timezone.now(),
                best_epoch=result.best_epoch, best_val_acc=result.best_val_acc, test_acc=result.test_acc,
                best_checkpoint=storage.relative(best) if best else "", device=result.device, lease_owner="")
    return result.outcome


def _fail(lease: jobs.Lease, message: str, trace: str = "") -> str:
    lease.update(status=Run.Status.FAILED, error=message, traceback=trace, finished_at=timezone.now(),
                 eta_seconds=None, lease_owner="")
    return "failed"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
