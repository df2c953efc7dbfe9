"""What a config's network is before it trains: its layers with their output shapes and parameters,
the parameter totals, the multiply-adds of one image, and a warning when the images are too small for it.

The network is `build_model`'s own, built on PyTorch's `meta` device: parameters have shapes but no
memory and the forward pass computes shapes only, so even a head of 8 x 65536 units costs nothing to
describe. torchinfo counts the multiply-adds; the rows and shapes come from hooks of our own.

"Trainable" means what learns in the first epoch: every parameter, or only the head's while
`freeze_backbone_epochs` keeps `features` frozen (docs/ARCHITECTURE.md, "Model summary").
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import os
from typing import Any, Mapping

import torch
import torchinfo
from torch import nn

from .archs import ARCHITECTURES
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .models import build_model

SMALL_IMAGE_ARCHS = "smallcnn, lenet5"
# Layers whose window looks at neighbouring pixels: on a 1 x 1 map they have none to look at.
_SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def model_summary(config: Mapping[str, Any] | TrainConfig, *, num_classes: int, channels: int,
                  image_size: int) -> dict[str, Any]:
    """{"layers": [{"name", "type", "output_shape", "params"}], "total_params", "trainable_params",
    "mult_adds", "warnings", "input"} for the network `build_model(config, ...)` makes.

    `output_shape` is for one image, without the batch dimension ([channels, height, width] or
    [features]); null for a layer the image never reached. `mult_adds` is for one image (null when the
    forward pass fails, which `warnings` then explains). A mapping is validated as TrainConfig
    (ConfigError names the field).
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config)
    for name, value, low in (("num_classes", num_classes, 1), ("channels", channels, 1), ("image_size", image_size, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be a whole number of at least {low}, not {value!r}")
    summary = _summary(config.arch, tuple(config.hidden_units), config.dropout, config.batch_norm,
                       config.freeze_backbone_epochs > 0, num_classes, channels, image_size)
    return copy.deepcopy(summary)


def checkpoint_input(path: str | os.PathLike) -> dict[str, int]:
    """{"num_classes", "channels", "image_size"} a checkpoint was trained for, read from its recorded
    preprocessing. Its tensors load onto the meta device: a big checkpoint costs no memory to ask."""
    preprocessing = load_checkpoint(path, map_location="meta")["preprocessing"]
    return {"num_classes": len(preprocessing["classes"]), "channels": int(preprocessing["channels"]),
            "image_size": int(preprocessing["image_size"])}


@functools.lru_cache(maxsize=256)
def _summary(arch: str, hidden_units: tuple[int, ...], dropout: float, batch_norm: bool, frozen: bool,
             num_classes: int, channels: int, image_size: int) -> dict[str, Any]:
    # Only what shapes the network is in the key: the initialisation changes values, not shapes.
    config = dataclasses.replace(TrainConfig(), arch=arch, hidden_units=list(hidden_units), dropout=dropout,
                                 batch_norm=batch_norm, init="default")
    with torch.device("meta"):
        model = build_model(config, num_classes=num_classes, channels=channels, image_size=image_size)
    if frozen:
        model.features.requires_grad_(False)
    rows = _rows(model)
    trace = _Trace(model, rows)
    try:
        stats = torchinfo.summary(model, input_size=(1, channels, image_size, image_size), device="meta",
                                  mode="eval", verbose=0, cache_forward_pass=False,
                                  col_names=("output_size", "num_params", "mult_adds"))
        mult_adds = int(stats.total_mult_adds)
    except RuntimeError:  # torchinfo's account of the forward pass failing inside a layer
        mult_adds = None
    finally:
        trace.remove()
    layers = [{"name": name, "type": type(module).__name__, "output_shape": trace.shapes.get(name),
               "params": sum(p.numel() for p in module.parameters())} for name, module in rows]
    return {
        "layers": layers,
        "total_params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "mult_adds": mult_adds,
        "warnings": _too_small(arch, image_size, trace, failed=mult_adds is None),
        "input": {"channels": channels, "image_size": image_size, "num_classes": num_classes},
    }


def _rows(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules a reader wants one line each for: the parts of `features` and `head`, opened down
    through containers (Sequential, the torchvision network) to layers or residual blocks. Every
    parameter is in exactly one row; the identities that replaced torchvision's classifier are left out."""
    rows: list[tuple[str, nn.Module]] = []

    def visit(prefix: str, module: nn.Module, open_it: bool) -> None:
        if not open_it:
            if not isinstance(module, nn.Identity):
                rows.append((prefix, module))
            return
        for name, child in module.named_children():
            visit(f"{prefix}.{name}" if prefix else name, child,
                  isinstance(child, nn.Sequential) and any(True for _ in child.children()))

    for name, part in model.named_children():  # features and head
        visit(name, part, any(True for _ in part.children()))
    return rows


class _Trace:
    """Forward hooks: each row's output shape, the spatial layers that saw a 1 x 1 map, and the last
    layer entered (where a forward pass that fails stopped)."""

    def __init__(self, model: nn.Module, rows: list[tuple[str, nn.Module]]):
        self.shapes: dict[str, list[int]] = {}
        self.single_pixel: list[str] = []
        self.last_entered: str | None = None
        self._handles = []
        for name, module in rows:
            self._handles.append(module.register_forward_hook(self._shape_of(name)))
        for name, module in model.named_modules():
            if not any(True for _ in module.children()):
                self._handles.append(module.register_forward_pre_hook(self._entered(name, module)))

    def _shape_of(self, name: str):
        def hook(module, inputs, output):
            self.shapes[name] = list(output.shape[1:])
        return hook

    def _entered(self, name: str, module: nn.Module):
        spatial = isinstance(module, _SPATIAL) and _window(module) > 1

        def hook(module, inputs):
            self.last_entered = name
            if spatial and tuple(inputs[0].shape[-2:]) == (1, 1):
                self.single_pixel.append(name)
        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _window(module: nn.Module) -> int:
    size = module.kernel_size
    return max(size) if isinstance(size, tuple) else int(size)


def _too_small(arch: str, image_size: int, trace: _Trace, *, failed: bool) -> list[str]:
    """At most one sentence: the network cannot run on such images, or its feature map shrinks to one
    pixel while windows still follow, or the images are below the arch's `min_size` (archs.py)."""
    if failed:
        where = f" at {trace.last_entered}" if trace.last_entered else ""
        return [f"{arch} cannot run on {image_size} px images: they shrink to nothing{where}; use larger images "
                f"or a network for small images ({SMALL_IMAGE_ARCHS})."]
    if trace.single_pixel:
        count = len(trace.single_pixel)
        layers = "convolution or pooling layer has" if count == 1 else f"{count} convolution and pooling layers have"
        return [f"At {image_size} px the feature map of {arch} is down to a single pixel at "
                f"{trace.single_pixel[0]}, so its last {layers} no neighbouring pixels to look at; use larger "
                f"images or a network for small images ({SMALL_IMAGE_ARCHS})."]
    min_size = ARCHITECTURES[arch].min_size
    if image_size < min_size:
        return [f"{arch} is meant for images of at least {min_size} px and these are {image_size} px; a network "
                f"for small images ({SMALL_IMAGE_ARCHS}) suits them better."]
    return []
