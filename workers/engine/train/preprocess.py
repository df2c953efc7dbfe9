"""From stored uint8 pixels to the tensor a model sees: the one path for training, evaluation and
prediction.

Packs hold N x H x W x C uint8. `InputPipeline` turns a batch of those, already on the device, into
normalised float N x C x H x W: equalise (optional), scale to [0, 1], augment (training only),
normalise. The `Preprocessing` record travels in every checkpoint so a `Predictor` repeats exactly
these steps on a decoded image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .augment import augment_batch
from .config import AugmentConfig


@dataclass
class Preprocessing:
    image_size: int
    resize_mode: str
    channels: int
    classes: list[str]
    normalize: str = "channel"
    equalize: bool = False
    # Statistics of the train split in [0, 1], measured after equalisation when that is on.
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    mean_image: np.ndarray | None = None  # H x W x C float32

    def to_checkpoint(self) -> dict[str, Any]:
        """Only plain types and tensors, so `torch.load(weights_only=True)` can read it back."""
        return {
            "image_size": self.image_size, "resize_mode": self.resize_mode, "channels": self.channels,
            "classes": list(self.classes), "normalize": self.normalize, "equalize": self.equalize,
            "mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
            "mean_image": torch.from_numpy(np.ascontiguousarray(self.mean_image, dtype=np.float32)),
        }

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> "Preprocessing":
        values = dict(data)
        values["mean_image"] = values["mean_image"].numpy()
        return cls(**values)


def train_statistics(images: np.ndarray, indices: np.ndarray, *, equalize: bool,
                     chunk: int = 4096) -> tuple[list[float], list[float], np.ndarray]:
    """Per-channel mean/std and the mean image of images[indices], as the model will see them.

    The pack already holds these for raw pixels; with equalisation on they must be measured again,
    because normalising equalised pixels with raw statistics would shift every input.
    """
    _, h, w, c = images.shape
    pixel_sum = torch.zeros(c, h, w, dtype=torch.float64)
    square_sum = torch.zeros(c, dtype=torch.float64)
    for start in range(0, len(indices), chunk):
        batch = torch.from_numpy(np.ascontiguousarray(images[np.sort(indices[start:start + chunk])]))
        batch = batch.permute(0, 3, 1, 2)
        if equalize:
            batch = equalize_batch(batch)
        batch = batch.double() / 255.0
        pixel_sum += batch.sum(0)
        square_sum += batch.square().sum((0, 2, 3))
    count = max(len(indices), 1)
    mean_image = pixel_sum / count
    mean = mean_image.mean((1, 2))
    std = (square_sum / (count * h * w) - mean.square()).clamp(min=1e-12).sqrt()
    return mean.tolist(), std.tolist(), mean_image.permute(1, 2, 0).float().numpy()


def equalize_batch(images: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation of every channel of every image of a uint8 N x C x H x W batch.

    The classic mapping round((cdf - cdf_min) / (pixels - cdf_min) * 255), computed for the whole
    batch at once on its device; a constant channel is left as it is.
    """
    n, c, h, w = images.shape
    flat = images.reshape(n * c, h * w).long()
    hist = torch.zeros(n * c, 256, dtype=torch.long, device=images.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    cdf = hist.cumsum(1)
    cdf_min = cdf.gather(1, flat.min(1, keepdim=True).values)
    span = h * w - cdf_min
    lut = ((cdf - cdf_min) * 255 + span // 2) // span.clamp(min=1)
    identity = torch.arange(256, device=images.device).expand_as(lut)
    lut = torch.where(span > 0, lut.clamp(0, 255), identity)
    return lut.gather(1, flat).to(torch.uint8).reshape(n, c, h, w)


class InputPipeline:
    """Callable: uint8 N x H x W x C on the device -> normalised float N x C x H x W."""

    def __init__(self, preprocessing: Preprocessing, *, device: torch.device, channels_last: bool = False):
        p = preprocessing
        self.preprocessing = p
        self.channels_last = channels_last
        self.normalize: Callable[[torch.Tensor], torch.Tensor]
        if p.normalize == "scale":
            self.normalize = lambda x: x
        elif p.normalize == "channel":
            mean = torch.tensor(p.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
            inv_std = 1.0 / torch.tensor(p.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
            self.normalize = lambda x: (x - mean) * inv_std
        elif p.normalize == "mean_image":
            mean_image = torch.from_numpy(p.mean_image).to(device).permute(2, 0, 1).unsqueeze(0)
            self.normalize = lambda x: x - mean_image
        else:
            raise ValueError(f"normalize must be one of scale, channel, mean_image, not {p.normalize!r}")

    def __call__(self, images: torch.Tensor, *, augment: AugmentConfig | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2)  # a view: NHWC memory is already channels_last
        if self.preprocessing.equalize:
            x = equalize_batch(x)
        x = x.float().mul_(1.0 / 255.0)
        if augment is not None and augment.any:
            x = augment_batch(x, augment, generator=generator)
        x = self.normalize(x)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=memory_format)
