"""A run inside a training worker: claim it, train through the engine, record what happens, let go.

This runs in the `train` worker (one process per GPU). The engine knows nothing of Django; the
callbacks here turn its progress into rows. Every write is conditional on the lease, so a worker
that lost its run (the reaper handed it to another) can no longer touch it.
"""
import gc
import logging
import math
import os
import signal
import threading
import time
import traceback
import uuid

from django.conf import settings
from django.utils import timezone

from apps.datasets import storage
from dlstudio.heartbeat import Heartbeat
from dlstudio.version import code_version

from .models import EpochMetric, Evaluation, Run
from .services import run_requeue

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2.0
# Fault injection for tests/faults, off unless set in the worker's environment: the training worker
# process kills itself with SIGKILL on reaching this epoch (before recording it), as the kernel's
# out-of-memory killer would. Never set it in a deployment.
FAULT_KILL_AT_EPOCH = "DLSTUDIO_FAULT_KILL_AT_EPOCH"
# Set when the worker begins a warm shutdown (a deploy, Ctrl-C): the run checkpoints and goes back
# to the queue instead of being lost.
shutdown_requested = threading.Event()


def run_train(*, run_id: int, worker: str) -> str:
    """Train the run if this worker can claim it; returns what became of it (for the task's log)."""
    lease = f"{worker}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    if not _claim(run_id, lease=lease, worker=worker):
        return "not claimed"
    heartbeat = _heartbeat(run_id, lease)
    heartbeat.start()
    try:
        return _train(Run.objects.select_related("dataset", "parent", "weights_file").get(pk=run_id), lease, heartbeat)
    finally:
        heartbeat.stop()
        _release_memory()


def _claim(run_id: int, *, lease: str, worker: str) -> bool:
    """One conditional UPDATE: a duplicate delivery finds the run taken and returns."""
    import torch

    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, status=Run.Status.QUEUED, cancel_requested=False).update(
        status=Run.Status.RUNNING, lease_owner=lease, heartbeat_at=now, worker=worker, error="", traceback="",
        torch_version=torch.__version__, code_version=code_version())
    if claimed:
        Run.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    return bool(claimed)


def _heartbeat(run_id: int, lease: str) -> Heartbeat:
    return Heartbeat(f"run-{run_id}", lambda: bool(
        Run.objects.filter(pk=run_id, lease_owner=lease).update(heartbeat_at=timezone.now())))


class Tracker:
    """The engine's callbacks: progress, cancellation and one metric row per epoch."""

    def __init__(self, run: Run, lease: str, heartbeat: Heartbeat):
        self.run, self.lease, self.heartbeat = run, lease, heartbeat
        self.mine = Run.objects.filter(pk=run.pk, lease_owner=lease)
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
        if not self.mine.update(progress=fraction, eta_seconds=eta) or self.heartbeat.lost.is_set():
            self.stop_reason = "lost"
        elif Run.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            self.stop_reason = "cancelled"
        elif shutdown_requested.is_set():
            self.stop_reason = "shutdown"
        return self.stop_reason is not None

    def on_epoch(self, metrics: dict) -> None:
        if os.environ.get(FAULT_KILL_AT_EPOCH) == str(metrics["epoch"]):
            os.kill(os.getpid(), signal.SIGKILL)
        metrics = {k: (v if v is None or math.isfinite(v) else None) for k, v in metrics.items()}
        # By epoch number: an epoch trained again after a crash replaces its own row.
        EpochMetric.objects.update_or_create(run_id=self.run.pk, epoch=metrics["epoch"],
                                             defaults={**metrics, "attempt": self.run.attempt})
        fields = {"epoch": metrics["epoch"], "progress": metrics["epoch"] / self.run.epochs}
        if metrics["val_acc"] is not None and (self.best is None or metrics["val_acc"] > self.best[1]):
            self.best = (metrics["epoch"], metrics["val_acc"])
            fields.update(best_epoch=metrics["epoch"], best_val_acc=metrics["val_acc"])
        self.mine.update(**fields)


def _train(run: Run, lease: str, heartbeat: Heartbeat) -> str:
    from workers import engine

    mine = Run.objects.filter(pk=run.pk, lease_owner=lease)
    if run.dataset is None or not run.dataset.pack_path:
        return _fail(mine, "The dataset of this run was deleted; start the experiment on another dataset.")
    out_dir = storage.absolute(run.checkpoint_dir)
    init_checkpoint = storage.absolute(run.parent.checkpoint_dir) / "best.pt" if run.parent else None
    imagenet_weights = storage.absolute(run.weights_file.path) if run.weights_file else None
    tracker = Tracker(run, lease, heartbeat)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)  # inside: a full disk fails the run with its sentence
        mine.update(device=_device_name(run.config.get("device", "auto")))
        result = engine.fit(pack=storage.absolute(run.dataset.pack_path), config=run.config, out_dir=out_dir,
                            on_batch=tracker.on_batch, on_epoch=tracker.on_epoch, resume=True,
                            init_checkpoint=init_checkpoint, imagenet_weights=imagenet_weights)
    except Exception as exc:  # every failure ends the run with a sentence; the traceback goes beside it
        return _fail(mine, _failure_sentence(exc), traceback.format_exc())

    if result.outcome == "stopped":
        if tracker.stop_reason == "cancelled":
            mine.update(status=Run.Status.CANCELLED, finished_at=timezone.now(), eta_seconds=None, lease_owner="")
        elif tracker.stop_reason == "shutdown":
            run_requeue(run_id=run.pk, lease=lease)
        return tracker.stop_reason or "stopped"
    if result.outcome == "failed":
        return _fail(mine, result.error)
    if result.evaluation:
        Evaluation.objects.update_or_create(run_id=run.pk, defaults={
            key: result.evaluation[key]
            for key in ("split", "accuracy", "classes", "confusion", "per_class", "misclassified", "top_k_accuracy")})
    mine.update(status=Run.Status.SUCCEEDED, progress=1.0, eta_seconds=None, finished_at=timezone.now(),
                best_epoch=result.best_epoch, best_val_acc=result.best_val_acc, test_acc=result.test_acc,
                device=result.device, lease_owner="")
    return result.outcome


def _fail(mine, message: str, trace: str = "") -> str:
    mine.update(status=Run.Status.FAILED, error=message, traceback=trace, finished_at=timezone.now(),
                eta_seconds=None, lease_owner="")
    return "failed"


def _failure_sentence(exc: Exception) -> str:
    text = str(exc).strip()
    if "out of memory" in text.lower() or type(exc).__name__ == "OutOfMemoryError":
        return "The device ran out of memory; lower batch_size or image size, or pick a smaller arch."
    from workers import engine
    from workers.engine.diskspace import disk_full
    from workers.engine.packfile import PackError

    full = disk_full(exc)
    if full is not None:
        return (f"The disk is full: this run could not write its files ({full.strerror}); free some space on "
                "the data disk, then start the run again.")

    if isinstance(exc, (PackError, FileNotFoundError)) and not isinstance(exc, engine.WeightsNotFound):
        return "The dataset's packed images or a checkpoint are missing or damaged; upload the dataset again."
    if isinstance(exc, (engine.ConfigError, engine.CheckpointError, engine.WeightsNotFound)):
        return text
    log.exception("training failed")
    return f"Training failed with {type(exc).__name__}: {text[:300]}"


def _device_name(requested: str) -> str:
    from workers.engine.session import resolve_device

    import torch

    device = resolve_device(requested)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _release_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
