"""The training loop: `train_one_epoch`, `evaluate`, `fit`, in the manner of torchvision's
references/classification/train.py.

Nothing in a step waits for the host: loss and accuracy are summed on the device and read once per
epoch, so a GPU stays busy. Every epoch ends with a rolling `last.pt` (and `best.pt` when val
accuracy improved); a stop asked for by `on_batch` writes `last.pt` mid-epoch, and a `fit` given that
file (`resume_from`, or `resume=True` in the same folder) continues exactly where it left off.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from ..errors import CheckpointError
from ..ingest.pack import Pack
from .checkpoint import BEST, LAST, load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from .config import TrainConfig
from .evaluation import classification_report, default_split, predict_split
from .optim import LRSchedule, build_optimizer
from .session import TrainingSession, as_config, deterministic_mode, open_session
from .transfer import set_backbone_frozen

@dataclass(frozen=True)
class BatchProgress:
    epoch: int  # 1-based
    epochs: int
    batch: int  # 1-based, within the epoch
    batches: int  # per epoch

    @property
    def fraction(self) -> float:
        return ((self.epoch - 1) * self.batches + self.batch) / (self.epochs * self.batches)


@dataclass
class FitResult:
    outcome: str  # "completed", "early_stopped", "halted" (on_checkpoint asked), "stopped" (on_batch asked), "failed"
    error: str | None
    epochs_completed: int
    best_epoch: int | None
    best_val_acc: float | None
    test_acc: float | None
    checkpoint: str | None  # best.pt: the weights to evaluate and predict with
    last_checkpoint: str | None  # last.pt: where `fit(resume=True)` continues from
    history: list[dict[str, Any]]
    evaluation: dict[str, Any] | None  # the run's evaluation, on test (or val) with the best weights
    device: str

    def summary(self) -> dict[str, Any]:
        """The CLI's final line."""
        return {"best_epoch": self.best_epoch, "best_val_acc": self.best_val_acc, "test_acc": self.test_acc,
                "checkpoint": self.checkpoint}


@dataclass
class EpochTotals:
    """Running sums of the epoch being trained, kept on the device until the epoch ends."""
    loss_sum: torch.Tensor
    correct: torch.Tensor
    images: int = 0
    batches: int = 0  # batches of the epoch done, counted from its start (also across a resume)
    seconds: float = 0.0
    lr: float = 0.0

    @classmethod
    def zeros(cls, device: torch.device) -> "EpochTotals":
        return cls(torch.zeros((), device=device), torch.zeros((), dtype=torch.long, device=device))

    def to_checkpoint(self) -> dict[str, Any]:
        return {"loss_sum": self.loss_sum.cpu(), "correct": self.correct.cpu(), "images": self.images,
                "batches": self.batches, "seconds": self.seconds, "lr": self.lr}

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any], device: torch.device) -> "EpochTotals":
        return cls(data["loss_sum"].to(device), data["correct"].to(device), data["images"], data["batches"],
                   data["seconds"], data["lr"])


@dataclass
class RunProgress:
    """Where the run stands; saved in every checkpoint so a resumed run picks up all of it."""
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches done in the next epoch (set by a stop mid-epoch)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float = -math.inf  # val_acc, or -train_loss when there is no val split
    monitor_best: float | None = None
    bad_epochs: int = 0

    def best_is(self, epoch: int | None) -> None:
        """The best epoch is the one whose weights are at hand (a best checkpoint that fell behind its record)."""
        self.best_epoch = epoch or None
        row = self.history[epoch - 1] if epoch else None
        self.best_score = -math.inf if row is None else (
            row["val_acc"] if row["val_acc"] is not None else -row["train_loss"])

    def record(self, metrics: dict[str, Any], *, monitor: str) -> bool:
        """Adds an epoch; True when it is the best so far (and best.pt should be written)."""
        self.history.append(metrics)
        self.epoch, self.batch = metrics["epoch"], 0
        value = metrics[monitor]
        if value is not None:
            better = self.monitor_best is None or (
                value < self.monitor_best if monitor == "val_loss" else value > self.monitor_best)
            self.monitor_best = value if better else self.monitor_best
            self.bad_epochs = 0 if better else self.bad_epochs + 1
        score = metrics["val_acc"] if metrics["val_acc"] is not None else -metrics["train_loss"]
        if score > self.best_score:
            self.best_score, self.best_epoch = score, metrics["epoch"]
            return True
        return False

    @property
    def best_val_acc(self) -> float | None:
        return self.history[self.best_epoch - 1]["val_acc"] if self.best_epoch else None


def train_one_epoch(s: TrainingSession, *, optimizer: torch.optim.Optimizer, schedule: LRSchedule, epoch: int,
                    generator: torch.Generator, totals: EpochTotals, start_batch: int = 0,
                    on_batch: Callable[[BatchProgress], bool | None] | None = None) -> bool:
    """Trains one epoch (from `start_batch` when resuming inside it); True when on_batch asked to stop."""
    config, model = s.config, s.model
    model.train()
    set_backbone_frozen(model, epoch <= config.freeze_backbone_epochs)
    batches = s.data.num_batches("train", batch_size=config.batch_size, drop_last=True)
    # The order of an epoch depends only on (seed, epoch): a resumed run sees the same batches.
    order_seed = config.seed * 1_000_003 + epoch
    started = time.perf_counter()
    stopped = False
    for number, batch in enumerate(s.data.batches("train", batch_size=config.batch_size, shuffle_seed=order_seed,
                                                  drop_last=True, start=start_batch), start=start_batch + 1):
        inputs = s.pipeline(batch.images, augment=config.augment, generator=generator)
        with s.autocast():
            logits = model(inputs)
            loss = s.criterion(logits, batch.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        totals.lr = schedule.lr
        schedule.step()
        totals.loss_sum += loss.detach().float() * len(batch.labels)
        totals.correct += (logits.argmax(1) == batch.labels).sum()
        totals.images += len(batch.labels)
        totals.batches = number
        if on_batch is not None and on_batch(BatchProgress(epoch, config.epochs, number, batches)):
            stopped = True
            break
    _wait_for_device(s.device)
    totals.seconds += time.perf_counter() - started
    return stopped


@torch.inference_mode()
def evaluate(s: TrainingSession, *, split: str) -> tuple[float | None, float | None]:
    """Mean loss and accuracy on a split; (None, None) when the split is empty."""
    if s.data.size(split) == 0:
        return None, None
    s.model.eval()
    loss_sum = torch.zeros((), device=s.device)
    correct = torch.zeros((), dtype=torch.long, device=s.device)
    for batch in s.data.batches(split, batch_size=_eval_batch_size(s.config)):
        with s.autocast():
            logits = s.model(s.pipeline(batch.images))
        loss_sum += s.criterion(logits.float(), batch.labels) * len(batch.labels)
        correct += (logits.argmax(1) == batch.labels).sum()
    count = s.data.size(split)
    return loss_sum.item() / count, correct.item() / count


def fit(*, pack: Pack | str | os.PathLike, config: TrainConfig | Mapping[str, Any] | None, out_dir: str | os.PathLike,
        on_batch: Callable[[BatchProgress], bool | None] | None = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        on_checkpoint: Callable[..., bool | None] | None = None, halt_after: int | None = None,
        resume: bool = False, resume_from: str | os.PathLike | None = None,
        best_from: str | os.PathLike | None = None, file_per_epoch: bool = False,
        init_checkpoint: str | os.PathLike | None = None, imagenet_weights: str | os.PathLike | None = None,
        resident: bool | None = None) -> FitResult:
    """Train on a pack, writing checkpoints into `out_dir`.

    A run continues from `resume_from` (a `last.pt` of its own) with `best_from` its best checkpoint
    so far, wherever they are; `resume=True` means the `last.pt` and `best.pt` in `out_dir`, when
    there are some. A best checkpoint that is not of the best epoch recorded with it (a crash between
    two writes) makes its own epoch the best: the weights at hand and the record always agree.
    `file_per_epoch` writes `last-e<epoch>.pt` (`...-b<batch>.pt` for a stop mid-epoch) and
    `best-e<epoch>.pt` instead of rolling `last.pt` and `best.pt`: no file is ever written twice, so one
    that someone else has named stays as it was.

    `on_batch(progress)` runs after every training step (Python numbers only, so it costs no
    device sync); returning True stops the run: `last.pt` is written mid-epoch and the outcome is
    "stopped". `on_epoch(metrics)` gets the keys of `/api/runs/<id>/metrics` after each epoch,
    before that epoch's checkpoints are written; `on_checkpoint(metrics, last=path, best=path or
    None)` once they are: the moment to record the epoch together with the files that hold it. After
    a crash between the two, the epoch is trained and reported again with the same numbers. When it
    returns True the run halts after that epoch (a sweep pruned it): like early stopping, the best
    weights are evaluated, and the outcome is "halted"; `halt_after=N` halts after epoch N (a halted
    run resumed ends at once).
    `init_checkpoint` is the file a `{"run": id}` start resolves to; `imagenet_weights` a weights
    file to use instead of torchvision's cache; `resident` forces (or forbids) moving the pack to
    the device. Errors that stop a run before it starts raise (ConfigError, CheckpointError,
    WeightsNotFound, PackError); a loss that becomes NaN returns outcome "failed" with `error`.
    """
    config = as_config(config)
    with deterministic_mode(config.deterministic):
        return _fit(config=config, pack=pack, out_dir=Path(out_dir), on_batch=on_batch, on_epoch=on_epoch,
                    on_checkpoint=on_checkpoint, halt_after=halt_after, resume=resume, resume_from=resume_from,
                    best_from=best_from, file_per_epoch=file_per_epoch, init_checkpoint=init_checkpoint,
                    imagenet_weights=imagenet_weights, resident=resident)


def _fit(*, config: TrainConfig, pack: Pack | str | os.PathLike, out_dir: Path,
         on_batch: Callable[[BatchProgress], bool | None] | None,
         on_epoch: Callable[[dict[str, Any]], None] | None,
         on_checkpoint: Callable[..., bool | None] | None, halt_after: int | None,
         resume: bool, resume_from: str | os.PathLike | None, best_from: str | os.PathLike | None,
         file_per_epoch: bool, init_checkpoint: str | os.PathLike | None,
         imagenet_weights: str | os.PathLike | None, resident: bool | None) -> FitResult:
    if resume and resume_from is None and (out_dir / LAST).is_file():
        resume_from = out_dir / LAST
        best_from = best_from or ((out_dir / BEST) if (out_dir / BEST).is_file() else None)
    resumed = load_checkpoint(resume_from) if resume_from is not None else None
    if resumed is not None and resumed["config"] != config.to_dict():
        raise CheckpointError(f"{Path(resume_from).name} was written by a different config; start in another folder")
    current_best = Path(best_from) if resumed is not None and best_from is not None else None
    current_last = Path(resume_from) if resume_from is not None else None

    def last_path(batch: int = 0) -> Path:
        if not file_per_epoch:
            return out_dir / LAST
        return out_dir / (f"last-e{progress.epoch}-b{batch}.pt" if batch else f"last-e{progress.epoch}.pt")

    def best_path() -> Path:
        return out_dir / (f"best-e{progress.epoch}.pt" if file_per_epoch else BEST)
    s = open_session(pack=pack, config=config, resident=resident, init_checkpoint=init_checkpoint,
                     imagenet_weights=imagenet_weights, load_pretrained=resumed is None)
    optimizer = build_optimizer(s.model, config)
    schedule = LRSchedule(optimizer, config=config,
                          steps_per_epoch=s.data.num_batches("train", batch_size=config.batch_size, drop_last=True))
    generator = torch.Generator(device=s.device).manual_seed(config.seed)
    progress, totals = RunProgress(), EpochTotals.zeros(s.device)
    if resumed is not None:
        s.model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        schedule.load_state_dict(resumed["scheduler"])
        restore_rng_state(resumed["rng"], generator)
        progress = RunProgress(**resumed["progress"])
        if resumed["partial"] is not None:
            totals = EpochTotals.from_checkpoint(resumed["partial"], s.device)
        best_weights_epoch = load_checkpoint(current_best)["epoch"] if current_best is not None else None
        if best_weights_epoch != progress.best_epoch:
            progress.best_is(best_weights_epoch)

    def save(path: Path, partial: EpochTotals | None = None) -> Path:
        return save_checkpoint({
            "model": s.model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
            "epoch": progress.epoch, "partial": partial.to_checkpoint() if partial else None,
            "rng": rng_state(generator), "progress": asdict(progress), "config": config.to_dict(),
            "classes": s.pack.classes, "preprocessing": s.preprocessing.to_checkpoint(),
        }, path)

    def result(outcome: str, error: str | None = None, evaluation: dict | None = None) -> FitResult:
        test_acc = evaluation["accuracy"] if evaluation and evaluation["split"] == "test" else None
        return FitResult(
            outcome=outcome, error=error, epochs_completed=progress.epoch, best_epoch=progress.best_epoch,
            best_val_acc=progress.best_val_acc, test_acc=test_acc,
            checkpoint=str(current_best) if current_best is not None else None,
            last_checkpoint=str(current_last) if current_last is not None else None,
            history=list(progress.history), evaluation=evaluation, device=s.describe_device())

    def stopped_early() -> bool:
        return 0 < config.early_stopping.patience <= progress.bad_epochs

    halted = halt_after is not None and progress.epoch >= halt_after
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        if halted or stopped_early():  # also when resuming a run that had already stopped early
            break
        _reset_peak_memory(s.device)
        if train_one_epoch(s, optimizer=optimizer, schedule=schedule, epoch=epoch, generator=generator,
                           totals=totals, start_batch=progress.batch, on_batch=on_batch):
            progress.batch = totals.batches
            current_last = save(last_path(totals.batches), partial=totals)
            return result("stopped")
        eval_started = time.perf_counter()
        val_loss, val_acc = evaluate(s, split="val")
        train_loss = totals.loss_sum.item() / max(totals.images, 1)
        if not math.isfinite(train_loss) or (val_loss is not None and not math.isfinite(val_loss)):
            return result("failed", f"loss became NaN at epoch {epoch}; lower the learning rate")
        metrics = {
            "epoch": epoch, "train_loss": train_loss, "train_acc": totals.correct.item() / max(totals.images, 1),
            "val_loss": val_loss, "val_acc": val_acc, "lr": totals.lr,
            "seconds": totals.seconds + time.perf_counter() - eval_started,
            "images_per_s": totals.images / max(totals.seconds, 1e-9),
            "gpu_memory_peak_mb": _peak_memory_mb(s.device),
        }
        schedule.end_epoch(val_loss if val_loss is not None else train_loss)
        is_best = progress.record(metrics, monitor=config.early_stopping.monitor)
        totals = EpochTotals.zeros(s.device)
        if on_epoch is not None:
            on_epoch(dict(metrics))
        current_last = save(last_path())
        if is_best:
            current_best = save(best_path())
        if on_checkpoint is not None:
            halted = bool(on_checkpoint(dict(metrics), last=current_last, best=current_best if is_best else None))
        halted = halted or (halt_after is not None and epoch >= halt_after)

    outcome = "halted" if halted else "early_stopped" if stopped_early() else "completed"
    split = default_split(s.pack)
    if split is None or current_best is None:
        return result(outcome)
    s.model.load_state_dict(load_checkpoint(current_best)["model"])
    probabilities, labels, index = predict_split(model=s.model, data=s.data, pipeline=s.pipeline, split=split,
                                                 batch_size=_eval_batch_size(config), autocast=s.autocast)
    return result(outcome, evaluation=classification_report(
        probabilities=probabilities, labels=labels, index=index, classes=s.pack.classes, split=split))


def _eval_batch_size(config: TrainConfig) -> int:
    # No gradients to keep: evaluation affords bigger batches, which it needs fewer of.
    return min(max(2 * config.batch_size, 256), 4096)


def _wait_for_device(device: torch.device) -> None:
    """The one host sync of an epoch, so its seconds measure work done, not work queued."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_memory_mb(device: torch.device) -> float | None:
    """The most GPU memory PyTorch's tensors held since `_reset_peak_memory` (the epoch's training and
    validation), in MiB; None on a CPU. What the allocator keeps cached beside them is not counted, so
    nvidia-smi shows more. An epoch resumed in its middle counts from the resume."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
