"""The learning-rate range test (Smith 2015, as popularised by fastai): train for a few hundred
steps while the rate grows exponentially, record the loss, and suggest the rate where the loss
falls fastest. Nothing is written to disk; the model is thrown away afterwards.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from ..ingest.pack import Pack
from .config import TrainConfig
from .optim import build_optimizer
from .session import as_config, open_session


@dataclass
class LRRangeResult:
    lrs: list[float]
    losses: list[float]  # smoothed
    suggested_lr: float | None

    @property
    def pairs(self) -> list[tuple[float, float]]:
        return list(zip(self.lrs, self.losses))


def smoothing_for(steps: int) -> float:
    """A moving average over about a tenth of the sweep (0.9 for 100 steps): over more, a short
    sweep's curve lags so far behind that it never shows the blow-up."""
    return min(0.98, max(0.7, 1 - 10 / steps))


def lr_range_test(*, pack: Pack | str | os.PathLike, config: TrainConfig | Mapping[str, Any] | None,
                  start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 200, smoothing: float | None = None,
                  diverge_factor: float = 4.0, resident: bool | None = None,
                  init_checkpoint: str | os.PathLike | None = None,
                  imagenet_weights: str | os.PathLike | None = None) -> LRRangeResult:
    """Sweep from `start_lr` to `end_lr` over `steps` batches (fewer when the loss blows up).

    A batch size larger than the train split is lowered to the split's size: the sweep uses whole
    batches only, and would otherwise have none.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError("start_lr must be greater than 0 and less than end_lr")
    smoothing = smoothing_for(steps) if smoothing is None else smoothing
    config = as_config(config)
    s = open_session(pack=pack, config=config, resident=resident, init_checkpoint=init_checkpoint,
                     imagenet_weights=imagenet_weights)
    train_size = s.data.size("train")
    if train_size < 2:
        raise ValueError("the range test needs at least 2 training images")
    batch_size = min(config.batch_size, train_size)
    optimizer = build_optimizer(s.model, config)
    generator = torch.Generator(device=s.device).manual_seed(config.seed)
    growth = (end_lr / start_lr) ** (1 / max(1, steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    s.model.train()
    epoch = 0
    while len(lrs) < steps:
        epoch += 1
        for batch in s.data.batches("train", batch_size=batch_size, shuffle_seed=config.seed + epoch,
                                    drop_last=True):
            lr = start_lr * growth ** len(lrs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs = s.pipeline(batch.images, augment=config.augment, generator=generator)
            with s.autocast():
                loss = s.criterion(s.model(inputs), batch.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # The range test needs each loss on the host; one sync per step is its nature.
            value = loss.item()
            average = smoothing * average + (1 - smoothing) * value
            smoothed = average / (1 - smoothing ** (len(lrs) + 1))  # bias-corrected moving average
            if not math.isfinite(smoothed) or (len(lrs) > 10 and smoothed > diverge_factor * best):
                return LRRangeResult(lrs, losses, suggest_lr(lrs, losses))
            best = min(best, smoothed)
            lrs.append(lr)
            losses.append(smoothed)
            if len(lrs) >= steps:
                break
    return LRRangeResult(lrs, losses, suggest_lr(lrs, losses))


def suggest_lr(lrs: list[float], losses: list[float]) -> float | None:
    """The rate of steepest descent of the smoothed loss, before its minimum.

    The first tenth of the sweep is left out: there the average rests on a few batches, and their
    noise looks like the steepest fall (it "suggests" 1e-7 on small data otherwise).
    """
    skip = max(3, len(lrs) // 10)
    lrs, losses = list(lrs[skip:]), list(losses[skip:])
    if len(lrs) < 5:
        return None
    log_lr = np.log10(np.asarray(lrs))
    loss = np.asarray(losses)
    lowest = int(loss.argmin())
    if lowest < 3:
        return float(lrs[lowest]) / 10
    slope = np.gradient(loss[:lowest + 1], log_lr[:lowest + 1])
    return float(lrs[int(slope.argmin())])
