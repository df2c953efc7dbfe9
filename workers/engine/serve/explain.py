"""Looking inside a trained network: Grad-CAM heatmaps, the first convolution's filters, and the
activation maps of each convolutional stage (docs/ARCHITECTURE.md, "Looking inside").

Grad-CAM is captum's `LayerGradCam` on the layer the architecture table names (`Arch.cam_layer`):
the gradients of a class's score with respect to that layer's maps weight the maps, and the positive
part, upsampled to the input, is where the network looked for that class. Everything here works on
the preprocessed N x C x H x W tensor the model itself sees, and returns plain numpy arrays; turning
them into pictures for people is `overlay`, `filter_grid` and `channel_grid`, pure functions too.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..train.archs import ARCHITECTURES
from ..train.models import Classifier

# Activation maps shown per stage: the channels with the largest mean activation.
TOP_CHANNELS = 8


def cam_layer(model: Classifier) -> nn.Module:
    """The layer Grad-CAM attributes to: the table's path inside `features`, or, for dlstudio's own
    networks, the block just before their global pooling (its index follows the image size)."""
    path = ARCHITECTURES[model.arch].cam_layer
    if path:
        return model.features.get_submodule(path)
    children = list(model.features.children())
    pool = next(i for i, m in enumerate(children) if isinstance(m, nn.AdaptiveAvgPool2d))
    return children[pool - 1]


def gradcam(model: Classifier, inputs: torch.Tensor, targets: Sequence[int]) -> np.ndarray:
    """N x H x W heatmaps in [0, 1], the input's height and width, one per (input, target class).

    A map that is zero everywhere (no positive evidence for the class) stays zero rather than being
    stretched into noise.
    """
    from captum.attr import LayerAttribution, LayerGradCam  # noqa: PLC0415  (only explaining pays for it)

    model.eval()
    with torch.enable_grad():
        inputs = inputs.detach().clone().requires_grad_(True)
        attribution = LayerGradCam(model, cam_layer(model)).attribute(
            inputs, target=list(targets), relu_attributions=True)
        heat = LayerAttribution.interpolate(attribution.detach().float(), tuple(inputs.shape[-2:]),
                                            interpolate_mode="bilinear")
    heat = heat[:, 0].clamp_(min=0)
    peak = heat.flatten(1).amax(1).view(-1, 1, 1)
    return (heat / torch.where(peak > 0, peak, torch.ones_like(peak))).cpu().numpy()


def first_conv_filters(model: Classifier) -> np.ndarray:
    """The first convolution's weights: filters x in_channels x k x k."""
    conv: nn.Conv2d = model.features.get_submodule(ARCHITECTURES[model.arch].first_conv)
    return conv.weight.detach().float().cpu().numpy()


def stage_activations(model: Classifier, inputs: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """(name, C x H x W maps) for the first input, one per convolutional stage: the last output of
    the network's top-level sequence at each spatial resolution, down to the Grad-CAM layer."""
    sequence = _stages(model)
    outputs: list[tuple[str, torch.Tensor]] = []
    hooks = [module.register_forward_hook(
        lambda _m, _i, out, name=name: outputs.append((name, out[0].detach().float().cpu()))
        if isinstance(out, torch.Tensor) and out.dim() == 4 else None)
        for name, module in sequence.named_children()]
    try:
        with torch.inference_mode():
            model(inputs[:1])
    finally:
        for hook in hooks:
            hook.remove()
    stages: dict[tuple[int, int], tuple[str, torch.Tensor]] = {}
    for name, maps in outputs:
        stages[tuple(maps.shape[-2:])] = (name, maps)  # a later output at the same size replaces it
    return [(name, maps.numpy()) for name, maps in stages.values()]


def _stages(model: Classifier) -> nn.Module:
    """The module whose children are the network's stages, in order: the Grad-CAM layer itself when
    it holds the whole convolutional stack (VGG's and MobileNet's `features`), else its parent."""
    target = cam_layer(model)
    first_conv = model.features.get_submodule(ARCHITECTURES[model.arch].first_conv)
    if any(m is first_conv for m in target.modules()):
        return target
    return next(m for m in model.features.modules() if any(child is target for child in m.children()))


# --- pictures ----------------------------------------------------------------------------------

# A perceptually ordered dark-to-bright ramp (close to matplotlib's "inferno"), so heat reads the
# same to people who do not see red and green apart.
_RAMP = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                  [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float32)


def colorize(heat: np.ndarray) -> np.ndarray:
    """H x W in [0, 1] -> H x W x 3 uint8."""
    position = np.clip(heat, 0, 1) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    frac = (position - low)[..., None]
    return (_RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac).round().astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.5) -> np.ndarray:
    """The input (H x W x C uint8, C 1 or 3) with the heatmap blended over it: H x W x 3 uint8.

    Heat also sets the blend, so cold regions show the image as it is."""
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]
    weight = alpha * np.clip(heat, 0, 1)[..., None] ** 0.5
    return (rgb * (1 - weight) + colorize(heat) * weight).round().astype(np.uint8)


def filter_grid(filters: np.ndarray, *, scale: int = 6) -> np.ndarray:
    """filters x in_channels x k x k weights as one picture: each filter scaled to its own range, RGB
    when the input was, grey otherwise, on a grid with one-pixel gaps, enlarged `scale` times."""
    tiles = filters if filters.shape[1] in (1, 3) else filters.mean(axis=1, keepdims=True)
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    span = tiles.max(axis=(1, 2, 3), keepdims=True) - low
    tiles = (tiles - low) / np.where(span > 0, span, 1)
    tiles = (tiles.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
    return _grid(np.kron(tiles, np.ones((1, scale, scale, 1), dtype=np.uint8)))


def top_channels(maps: np.ndarray, *, top: int = TOP_CHANNELS) -> np.ndarray:
    """Indexes of the channels with the largest mean activation, largest first."""
    return np.argsort(-maps.mean(axis=(1, 2)), kind="stable")[:top]


def channel_grid(maps: np.ndarray, channels: np.ndarray, *, size: int = 48) -> np.ndarray:
    """The chosen channels of C x H x W maps as one picture of colorized tiles about `size` px wide."""
    picked = maps[channels]
    peak = picked.max(axis=(1, 2), keepdims=True)
    picked = np.clip(picked, 0, None) / np.where(peak > 0, peak, 1)
    scale = max(1, size // max(picked.shape[1:]))
    tiles = np.stack([colorize(np.kron(m, np.ones((scale, scale), dtype=np.float32))) for m in picked])
    return _grid(tiles)


def _grid(tiles: np.ndarray, *, gap: int = 1) -> np.ndarray:
    """N x h x w x C tiles on a near-square grid on white, one `gap` between them."""
    n, h, w, c = tiles.shape
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, c), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, col = divmod(i, columns)
        grid[r * (h + gap):r * (h + gap) + h, col * (w + gap):col * (w + gap) + w] = tile
    return grid
