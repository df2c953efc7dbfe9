"""Batched data augmentation on the device, in the style of airbench: one random draw per image,
applied to the whole batch with a few tensor operations instead of a per-image Python loop.

Input and output are float N x C x H x W in [0, 1]. Randomness comes only from `generator`, whose
state a checkpoint saves, so a resumed run draws the same augmentations as an uninterrupted one.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import AugmentConfig

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale uses.
_LUMA = (0.299, 0.587, 0.114)


def augment_batch(x: torch.Tensor, augment: AugmentConfig, *, generator: torch.Generator | None) -> torch.Tensor:
    n = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator, device=x.device).mul_(high - low).add_(low)

    def coin() -> torch.Tensor:
        return (torch.rand(n, generator=generator, device=x.device) < 0.5).view(n, 1, 1, 1)

    # Flips are exact index reversals; cheaper and lossless compared with resampling.
    if augment.hflip:
        x = torch.where(coin(), x.flip(3), x)
    if augment.vflip:
        x = torch.where(coin(), x.flip(2), x)
    if augment.crop_pad or augment.zoom or augment.rotate:
        x = _random_affine(x, augment, uniform)
    if augment.color_jitter:
        x = _color_jitter(x, augment.color_jitter, uniform)
    return x


def _random_affine(x: torch.Tensor, augment: AugmentConfig, uniform) -> torch.Tensor:
    """Shift (crop_pad), zoom and rotation folded into one affine warp per image.

    A shift by whole pixels with zero fill is exactly "pad with zeros, then crop at a random
    offset"; folding it into the same warp as zoom and rotation costs one resampling in all.
    """
    n, _, h, w = x.shape
    angle = uniform(-augment.rotate, augment.rotate) * (math.pi / 180) if augment.rotate else x.new_zeros(n)
    scale = uniform(1 - augment.zoom, 1 + augment.zoom) if augment.zoom else x.new_ones(n)
    if augment.crop_pad:
        p = augment.crop_pad
        # floor(uniform(-p, p + 1)) gives whole pixels in [-p, p], each equally likely.
        dx, dy = uniform(-p, p + 1).floor_(), uniform(-p, p + 1).floor_()
    else:
        dx, dy = x.new_zeros(n), x.new_zeros(n)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # theta maps output coordinates to input coordinates in [-1, 1] units; a pixel is 2 / size.
    theta = torch.stack([
        torch.stack([cos, -sin, dx * (2.0 / w)], 1),
        torch.stack([sin, cos, dy * (2.0 / h)], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _color_jitter(x: torch.Tensor, strength: float, uniform) -> torch.Tensor:
    n, c = x.shape[:2]
    shape = (n, 1, 1, 1)
    x = x * uniform(1 - strength, 1 + strength).view(shape)  # brightness
    gray = _grayscale(x)
    mean = gray.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(1 - strength, 1 + strength).view(shape) + mean  # contrast
    if c == 3:
        gray = _grayscale(x)
        x = (x - gray) * uniform(1 - strength, 1 + strength).view(shape) + gray  # saturation
    return x.clamp_(0.0, 1.0)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)
