"""Everything a training run needs before its first step, built the same way for `fit` and the
learning-rate range test: device, data, preprocessing, model with its starting weights.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from ..ingest.pack import Pack, open_pack
from .config import TrainConfig
from .data import PackedDataset
from .models import Classifier, build_model
from .preprocess import InputPipeline, Preprocessing, train_statistics
from .transfer import load_imagenet_weights, load_start_checkpoint


@dataclass
class TrainingSession:
    config: TrainConfig
    device: torch.device
    amp: bool  # bf16 autocast
    channels_last: bool
    pack: Pack
    data: PackedDataset
    preprocessing: Preprocessing
    pipeline: InputPipeline
    model: Classifier
    criterion: nn.Module

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def describe_device(self) -> str:
        if self.device.type == "cuda":
            return f"{self.device} ({torch.cuda.get_device_name(self.device)})"
        return str(self.device)


def as_config(config: TrainConfig | Mapping[str, Any] | None) -> TrainConfig:
    if isinstance(config, TrainConfig):
        config.validate()
        return config
    return TrainConfig.from_dict(config)


def resolve_device(name: str) -> torch.device:
    """`auto`, `cpu`, `cuda` or `cuda:N`; a CUDA device always gets its index, so generators,
    tensors and memory queries all name the same GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name} was asked for, but this machine has no usable CUDA GPU")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


# cuBLAS is deterministic only with a fixed workspace (PyTorch's "Reproducibility" notes).
CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """PyTorch's deterministic algorithms and no cuDNN autotuning while `enabled`; the process-wide
    flags are put back afterwards either way, since a training worker trains many runs in one process."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    try:
        if enabled:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]
        if saved[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[4]


def use_amp(config: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast on a GPU that supports it; never on the CPU, where it is slower, not faster."""
    return config.amp == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()


def make_preprocessing(pack: Pack, config: TrainConfig) -> Preprocessing:
    if config.equalize:
        mean, std, mean_image = train_statistics(pack.images, pack.indices("train"), equalize=True)
    else:
        mean, std, mean_image = pack.mean, pack.std, pack.mean_image
    return Preprocessing(
        image_size=pack.image_size, resize_mode=pack_resize_mode(pack),
        channels=pack.channels, classes=pack.classes, normalize=config.normalize, equalize=config.equalize,
        mean=list(mean), std=list(std), mean_image=mean_image)


def pack_resize_mode(pack: Pack) -> str:
    """How the packer resized the images (it keeps its options in meta.json); a predictor must do the same."""
    options = pack.meta.get("options") or {}
    return str(options.get("resize_mode") or pack.meta.get("resize_mode") or "squash")


def open_session(*, pack: Pack | str | os.PathLike, config: TrainConfig, resident: bool | None = None,
                 init_checkpoint: str | os.PathLike | None = None,
                 imagenet_weights: str | os.PathLike | None = None,
                 load_pretrained: bool = True) -> TrainingSession:
    """Seeds, then builds; `load_pretrained=False` when a resumed checkpoint replaces the weights anyway."""
    pack = pack if isinstance(pack, Pack) else open_pack(Path(pack))
    if len(pack.indices("train")) < 2:
        raise ValueError("the train split needs at least 2 images")
    device = resolve_device(config.device)
    if device.type == "cuda" and not config.deterministic:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
    channels_last = device.type == "cuda"
    torch.manual_seed(config.seed)
    preprocessing = make_preprocessing(pack, config)
    model = build_model(config, num_classes=len(pack.classes), channels=pack.channels, image_size=pack.image_size)
    if load_pretrained:
        if init_checkpoint is not None:
            load_start_checkpoint(model, init_checkpoint, classes=pack.classes)
        elif config.pretrained == "imagenet":
            load_imagenet_weights(model, weights_file=imagenet_weights)
        elif isinstance(config.pretrained, dict):
            raise ValueError('pretrained {"run": id} needs the path of that run\'s checkpoint (init_checkpoint)')
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return TrainingSession(
        config=config, device=device, amp=use_amp(config, device), channels_last=channels_last, pack=pack,
        data=PackedDataset(pack, device=device, resident=resident), preprocessing=preprocessing,
        pipeline=InputPipeline(preprocessing, device=device, channels_last=channels_last), model=model,
        criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing))
