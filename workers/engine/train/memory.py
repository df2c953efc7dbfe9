"""About how much memory training a config takes, known before anything is allocated: from the model
summary's numbers (`summary.py`, built on the meta device, so asking costs no memory even for a head of
8 x 65536 units).

The formula, all in fp32 (4 bytes a number), P the network's parameters:

    weights            4 P
    gradients          4 P
    optimizer state    4 P x slots: adam and adamw keep 2 per parameter (the two moments); sgd and
                       sgd_nesterov 1 (the momentum buffer, 0 when momentum is 0); rmsprop 1 (the mean
                       square), plus 1 with momentum
    activations        4 x batch_size x (input + the sum of every summary row's output) x ACTIVATION_FACTOR

A summary row is a layer or a whole residual block, so its output is one of the tensors autograd keeps
for the backward pass; ACTIVATION_FACTOR stands for the others it keeps beside it (a batch norm's input,
a ReLU's output, a dropout's mask, the inside of a residual block) and for the gradients of activations
that the backward pass holds while it runs. It was measured, not guessed: the peak RSS of training
steps in a fresh process was 0.4 to 2.2 times this estimate, over smallcnn, lenet5, a wide head,
resnet18, vgg11_bn and mobilenet_v3_small (the last the highest: its blocks keep wide expansions
inside); tests/engine/train/test_memory.py holds three of them to 0.3 to 3 times.

Left out, on purpose: the process itself (Python, PyTorch and its kernels, a few hundred MB), the
dataset (read from its pack through the page cache), automatic mixed precision (which halves the
activations on a GPU: the estimate stays an upper bound there), and the second copy of weights and
optimizer state held for a moment while a run resumes from its checkpoint.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .config import TrainConfig
from .summary import model_summary

BYTES = 4  # fp32
ACTIVATION_FACTOR = 2.5
GB = 10**9


@dataclass(frozen=True)
class RunMemory:
    params: int
    weights_bytes: int  # weights, their gradients and the optimizer's state
    activation_bytes: int
    batch_size: int
    image_size: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.activation_bytes

    @property
    def gigabytes(self) -> float:
        return self.total_bytes / GB


def optimizer_slots(config: TrainConfig) -> int:
    """Numbers the optimizer keeps per parameter."""
    if config.optimizer in ("adam", "adamw"):
        return 2
    if config.optimizer in ("sgd", "sgd_nesterov"):
        return 1 if config.momentum > 0 else 0
    if config.optimizer == "rmsprop":
        return 1 + (1 if config.momentum > 0 else 0)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def estimate_run_bytes(config: Mapping[str, Any] | TrainConfig, *, num_classes: int, channels: int,
                       image_size: int) -> RunMemory:
    """The memory training `config` on images of `channels` x `image_size` px takes, by the formula above."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config)
    summary = model_summary(config, num_classes=num_classes, channels=channels, image_size=image_size)
    params = summary["total_params"]
    per_image = channels * image_size * image_size + sum(
        math.prod(layer["output_shape"]) for layer in summary["layers"] if layer["output_shape"])
    return RunMemory(
        params=params,
        weights_bytes=BYTES * params * (2 + optimizer_slots(config)),
        activation_bytes=int(BYTES * config.batch_size * per_image * ACTIVATION_FACTOR),
        batch_size=config.batch_size, image_size=image_size)


def too_big_sentence(config: TrainConfig, memory: RunMemory, *, limit_gb: float, setting: str) -> str:
    """The refusal: how much it needs and why, the limit, and which keys lower it."""
    weights = (f"{_count(memory.params)} parameters ({config.arch} with hidden_units {_units(config.hidden_units)}), "
               f"with their gradients and {config.optimizer}'s state, take {_gb(memory.weights_bytes)}")
    activations = (f"batch_size {config.batch_size} at {memory.image_size} px takes {_gb(memory.activation_bytes)} "
                   "of activations")
    if memory.weights_bytes >= memory.activation_bytes:
        why = f"{weights}, and {activations}"
        lower = "hidden_units or pick a smaller arch; batch_size and the image size matter less here"
    else:
        why, lower = f"{activations}, and {weights}", "batch_size or the image size, or pick a smaller arch"
    return (f"This config needs about {_gb(memory.total_bytes)} to train: {why}; the limit is {limit_gb:g} GB "
            f"({setting}). Lower {lower}.")


def _units(units: list[int]) -> str:
    if len(units) > 2 and len(set(units)) == 1:
        return f"[{units[0]}] x {len(units)}"
    return str(units)


def _gb(number: int) -> str:
    gb = number / GB
    return f"{gb:,.0f} GB" if gb >= 10 else f"{gb:.1f} GB"


def _count(number: int) -> str:
    for size, word in ((10**9, "billion"), (10**6, "million")):
        if number >= size:
            return f"{number / size:,.1f} {word}"
    return f"{number:,}"
