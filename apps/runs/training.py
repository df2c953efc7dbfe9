"""A run inside a training worker: claim it, train through the engine, record what happens, let go.

This runs in the `train` worker (one process per GPU) through the job skeleton of `dlstudio.jobs`.
The engine knows nothing of Django; the callbacks here turn its progress into rows, and every write
after the claim goes through the run's lease, so a worker that lost its run (the reaper handed it to
another) can no longer change it.
"""
import math
import os
import time
import traceback
import uuid

import torch
from django.utils import timezone

from dlstudio import jobs, storage
from dlstudio.version import code_version
from workers import engine

from .models import EpochMetric, Evaluation, Run
from .selectors import best_checkpoint_path
from .services import run_requeue

PROGRESS_EVERY = 2.0


def run_train(*, run_id: int, worker: str) -> str:
    """Train the run if this worker can claim it; returns what became of it (for the task's log)."""
    token = f"{worker}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    now = timezone.now()
    lease = jobs.claim(Run, run_id, where={"status": Run.Status.QUEUED, "cancel_requested": False},
                       changes={"status": Run.Status.RUNNING, "lease_owner": token, "heartbeat_at": now,
                                "worker": worker, "error": "", "traceback": "", "torch_version": torch.__version__,
                                "code_version": code_version()},
                       held={"lease_owner": token})
    if lease is None:
        return "not claimed"
    Run.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    run = Run.objects.select_related("dataset", "parent", "weights_file").get(pk=run_id)
    with jobs.working(f"run-{run_id}", lease):
        return _train(run, lease, token)


class Tracker:
    """The engine's callbacks: progress, cancellation and one metric row per epoch."""

    def __init__(self, run: Run, lease: jobs.Lease):
        self.run, self.lease = run, lease
        self.stop_reason: str | None = None
        self._last = time.monotonic()
        self._started, self._start_fraction = time.monotonic(), None
        best = EpochMetric.objects.filter(run=run, val_acc__isnull=False).order_by("-val_acc", "epoch").first()
        self.best = (best.epoch, best.val_acc) if best else None

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
        elif Run.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            self.stop_reason = "cancelled"
        elif jobs.shutdown_requested.is_set():
            self.stop_reason = "shutdown"
        return self.stop_reason is not None

    def on_epoch(self, metrics: dict) -> None:
        metrics = {k: (v if v is None or math.isfinite(v) else None) for k, v in metrics.items()}
        # By epoch number: an epoch trained again after a crash replaces its own row.
        EpochMetric.objects.update_or_create(run_id=self.run.pk, epoch=metrics["epoch"],
                                             defaults={**metrics, "attempt": self.run.attempt})
        fields = {"epoch": metrics["epoch"], "progress": metrics["epoch"] / self.run.epochs}
        if metrics["val_acc"] is not None and (self.best is None or metrics["val_acc"] > self.best[1]):
            self.best = (metrics["epoch"], metrics["val_acc"])
            fields.update(best_epoch=metrics["epoch"], best_val_acc=metrics["val_acc"])
        self.lease.update(**fields)


def _train(run: Run, lease: jobs.Lease, token: str) -> str:
    if run.dataset is None or not run.dataset.pack_path:
        return _fail(lease, "The dataset of this run was deleted; start the experiment on another dataset.")
    out_dir = storage.absolute(run.checkpoint_dir)
    tracker = Tracker(run, lease)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)  # inside: a full disk fails the run with its sentence
        lease.update(device=_device_name(run.config.get("device", "auto")))
        result = engine.fit(pack=storage.absolute(run.dataset.pack_path), config=run.config, out_dir=out_dir,
                            on_batch=tracker.on_batch, on_epoch=tracker.on_epoch, resume=True,
                            init_checkpoint=best_checkpoint_path(run.parent) if run.parent else None,
                            imagenet_weights=storage.absolute(run.weights_file.path) if run.weights_file else None)
    except Exception as exc:  # every failure ends the run with a sentence; the traceback goes beside it
        sentence = jobs.failure_sentence(exc, doing="Training", subject="this run", again="start the run again")
        return _fail(lease, sentence, traceback.format_exc())

    if result.outcome == "stopped":
        if tracker.stop_reason == "cancelled":
            lease.update(status=Run.Status.CANCELLED, finished_at=timezone.now(), eta_seconds=None, lease_owner="")
        elif tracker.stop_reason == "shutdown":
            run_requeue(run_id=run.pk, lease=token)
        return tracker.stop_reason or "stopped"
    if result.outcome == "failed":
        return _fail(lease, result.error)
    if result.evaluation:
        Evaluation.objects.update_or_create(run_id=run.pk, defaults={
            key: result.evaluation[key] for key in Evaluation.REPORT})
    lease.update(status=Run.Status.SUCCEEDED, progress=1.0, eta_seconds=None, finished_at=timezone.now(),
                 best_epoch=result.best_epoch, best_val_acc=result.best_val_acc, test_acc=result.test_acc,
                 device=result.device, lease_owner="")
    return result.outcome


def _fail(lease: jobs.Lease, message: str, trace: str = "") -> str:
    lease.update(status=Run.Status.FAILED, error=message, traceback=trace, finished_at=timezone.now(),
                 eta_seconds=None, lease_owner="")
    return "failed"


def _device_name(requested: str) -> str:
    device = engine.resolve_device(requested)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
