"""Optimizers and learning-rate schedules of the config.

`LRSchedule` is one small class instead of a chain of torch schedulers: the rate is a pure
function of the step (plus the plateau factor), which makes warm-up combine with every schedule
and makes the state that a checkpoint must carry four numbers.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .config import TrainConfig

# `plateau` divides the rate after this many epochs without a better monitored value.
PLATEAU_PATIENCE = 2
PLATEAU_THRESHOLD = 1e-4  # relative improvement that counts as better
ONECYCLE_DIV, ONECYCLE_FINAL_DIV, ONECYCLE_PCT = 25.0, 1e4, 0.3  # torch's OneCycleLR defaults


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = list(model.parameters())
    lr, wd, momentum = config.lr, config.weight_decay, config.momentum
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)
    if config.optimizer == "sgd_nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd, nesterov=True)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=wd)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


class LRSchedule:
    """Sets the optimizer's rate before every step; `step()` after each batch, `end_epoch()` after each epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, config: TrainConfig, steps_per_epoch: int):
        self.optimizer = optimizer
        self.kind = config.lr_schedule
        self.base_lr = config.lr
        self.gamma = config.gamma
        self.step_size = config.step_size
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.warmup_steps = config.warmup_epochs * self.steps_per_epoch
        self.step_count = 0
        self.plateau_scale, self.plateau_best, self.plateau_bad = 1.0, math.inf, 0
        self._apply()

    @property
    def lr(self) -> float:
        """The rate the next step uses."""
        return self.lr_at(self.step_count)

    def lr_at(self, step: int) -> float:
        if self.kind == "onecycle":
            return self._onecycle(step)
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        if self.kind == "step":
            return self.base_lr * self.gamma ** ((step // self.steps_per_epoch) // self.step_size)
        if self.kind == "cosine":
            t = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
            return self.base_lr * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        if self.kind == "plateau":
            return self.base_lr * self.plateau_scale
        return self.base_lr

    def _onecycle(self, step: int) -> float:
        # The warm-up of one-cycle is its rising phase; warmup_epochs, when set, sets its length.
        rise = self.warmup_steps or max(1, round(ONECYCLE_PCT * self.total_steps))
        start, final = self.base_lr / ONECYCLE_DIV, self.base_lr / ONECYCLE_DIV / ONECYCLE_FINAL_DIV
        if step < rise:
            return _cosine_between(start, self.base_lr, step / rise)
        return _cosine_between(self.base_lr, final, (step - rise) / max(1, self.total_steps - rise))

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def end_epoch(self, monitored: float | None) -> None:
        """Feeds `plateau` the epoch's val_loss (lower is better); the other schedules ignore it."""
        if self.kind != "plateau" or monitored is None or self.step_count < self.warmup_steps:
            return
        if monitored < self.plateau_best * (1 - PLATEAU_THRESHOLD):
            self.plateau_best, self.plateau_bad = monitored, 0
            return
        self.plateau_bad += 1
        if self.plateau_bad >= PLATEAU_PATIENCE:
            self.plateau_scale *= self.gamma
            self.plateau_bad = 0
        self._apply()

    def _apply(self) -> None:
        lr = self.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count, "plateau_scale": self.plateau_scale,
                "plateau_best": self.plateau_best, "plateau_bad": self.plateau_bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.plateau_scale = float(state["plateau_scale"])
        self.plateau_best = float(state["plateau_best"])
        self.plateau_bad = int(state["plateau_bad"])
        self._apply()


def _cosine_between(start: float, end: float, t: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
