"""The training configuration: one dataclass for every key of the `config` table (README, "Training configuration").

Pure Python on purpose (no torch import), so the web app can validate a form or an API body with
`TrainConfig.from_dict` without paying for PyTorch. Every error names the field and what it
accepts, in one sentence a person can act on.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from ..errors import ConfigError
from .archs import ARCHS, IMAGENET_ARCHS

OPTIMIZERS = ("sgd", "sgd_nesterov", "rmsprop", "adam", "adamw")
LR_SCHEDULES = ("constant", "step", "cosine", "onecycle", "plateau")
INITS = ("default", "xavier", "kaiming")
NORMALIZATIONS = ("scale", "channel", "mean_image")
MONITORS = ("val_loss", "val_acc")
AMP_MODES = ("auto", "off")


@dataclass
class AugmentConfig:
    hflip: bool = False
    vflip: bool = False
    crop_pad: int = 0  # pixels of zero padding, then a random crop back to size
    zoom: float = 0.0  # scale drawn from [1 - zoom, 1 + zoom]
    rotate: int = 0  # degrees drawn from [-rotate, rotate]
    color_jitter: float = 0.0  # brightness, contrast, saturation factors from [1 - c, 1 + c]

    @property
    def any(self) -> bool:
        return bool(self.hflip or self.vflip or self.crop_pad or self.zoom or self.rotate or self.color_jitter)


@dataclass
class EarlyStoppingConfig:
    patience: int = 0  # epochs without improvement before stopping; 0 turns it off
    monitor: str = "val_loss"


@dataclass
class TrainConfig:
    arch: str = "smallcnn"
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    step_size: int = 5  # epochs between decays of `step`
    gamma: float = 0.1  # decay factor of `step` and `plateau`
    warmup_epochs: int = 0
    init: str = "default"
    dropout: float = 0.25
    hidden_units: list[int] = field(default_factory=lambda: [128])
    batch_norm: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    normalize: str = "channel"
    equalize: bool = False
    label_smoothing: float = 0.0
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    pretrained: None | str | dict[str, int] = None
    freeze_backbone_epochs: int = 0
    amp: str = "auto"
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False  # docs/CONFIG.md: deterministic algorithms, no cuDNN autotuning

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "TrainConfig":
        """Build and validate; missing keys take their defaults, unknown keys are an error."""
        data = dict(data or {})
        _reject_unknown(data, cls, prefix="")
        nested = {
            "augment": (AugmentConfig, data.pop("augment", None)),
            "early_stopping": (EarlyStoppingConfig, data.pop("early_stopping", None)),
        }
        config = cls(**data)
        for name, (kind, value) in nested.items():
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(field=name, message=f"{name} must be an object of settings")
            _reject_unknown(value, kind, prefix=f"{name}.")
            setattr(config, name, kind(**value))
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (this is also what a checkpoint stores)."""
        return asdict(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "TrainConfig":
        """A run's config: the experiment's, with nested dicts merged key by key."""
        merged = self.to_dict()
        for key, value in overrides.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return TrainConfig.from_dict(merged)

    def validate(self) -> None:
        _choice("arch", self.arch, ARCHS)
        _integer("epochs", self.epochs, 1, 1000)
        _integer("batch_size", self.batch_size, 1, 4096)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _number("lr", self.lr, low=0, low_open=True, text="a number greater than 0")
        _number("momentum", self.momentum, low=0, high=1, high_open=True, text="a number from 0 to below 1")
        if self.optimizer == "sgd_nesterov" and _is_number(self.momentum) and self.momentum == 0:
            raise ConfigError(field="momentum", message="momentum must be greater than 0 for sgd_nesterov")
        _number("weight_decay", self.weight_decay, low=0, text="a number of 0 or more")
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _integer("step_size", self.step_size, 1, 1000)
        _number("gamma", self.gamma, low=0, high=1, low_open=True, text="a number greater than 0 and at most 1")
        _integer("warmup_epochs", self.warmup_epochs, 0, 1000)
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(field="warmup_epochs", message="warmup_epochs must be less than epochs")
        _choice("init", self.init, INITS)
        _number("dropout", self.dropout, low=0, high=0.9, text="a number from 0 to 0.9")
        if not isinstance(self.hidden_units, (list, tuple)) or len(self.hidden_units) > 8 or any(
                not _is_int(u) or not 1 <= u <= 65536 for u in self.hidden_units):
            raise ConfigError(field="hidden_units",
                              message="hidden_units must be a list of up to 8 layer sizes from 1 to 65536")
        self.hidden_units = list(self.hidden_units)
        _boolean("batch_norm", self.batch_norm)
        if self.batch_norm and self.batch_size < 2:
            raise ConfigError(field="batch_size", message="batch_size must be at least 2 when batch_norm is true")
        self._validate_augment()
        _choice("normalize", self.normalize, NORMALIZATIONS)
        _boolean("equalize", self.equalize)
        _number("label_smoothing", self.label_smoothing, low=0, high=0.5, text="a number from 0 to 0.5")
        _integer("early_stopping.patience", self.early_stopping.patience, 0, 1000)
        _choice("early_stopping.monitor", self.early_stopping.monitor, MONITORS)
        self._validate_pretrained()
        _integer("freeze_backbone_epochs", self.freeze_backbone_epochs, 0, 1000)
        if self.freeze_backbone_epochs > self.epochs:
            raise ConfigError(field="freeze_backbone_epochs",
                              message="freeze_backbone_epochs must be at most epochs")
        _choice("amp", self.amp, AMP_MODES)
        for name in ("lr", "momentum", "weight_decay", "gamma", "dropout", "label_smoothing"):
            setattr(self, name, float(getattr(self, name)))
        self.augment.zoom = float(self.augment.zoom)
        self.augment.color_jitter = float(self.augment.color_jitter)
        _integer("seed", self.seed, 0, 2**31 - 1)
        _boolean("deterministic", self.deterministic)
        if not isinstance(self.device, str) or not (
                self.device in ("auto", "cpu", "cuda") or _is_cuda_index(self.device)):
            raise ConfigError(field="device", message=(
                "device must be one of auto, cpu, cuda, cuda:N with N a device number in ASCII digits "
                "(cuda:0, cuda:1)"))

    def _validate_augment(self) -> None:
        a = self.augment
        _boolean("augment.hflip", a.hflip)
        _boolean("augment.vflip", a.vflip)
        _integer("augment.crop_pad", a.crop_pad, 0, 64)
        _number("augment.zoom", a.zoom, low=0, high=0.5, text="a number from 0 to 0.5")
        _integer("augment.rotate", a.rotate, 0, 180)
        _number("augment.color_jitter", a.color_jitter, low=0, high=1, text="a number from 0 to 1")

    def _validate_pretrained(self) -> None:
        p = self.pretrained
        if p is None:
            return
        if p == "imagenet":
            if self.arch not in IMAGENET_ARCHS:
                raise ConfigError(field="pretrained", message=(
                    f'pretrained "imagenet" needs one of {", ".join(IMAGENET_ARCHS)}; '
                    f"{self.arch} has no ImageNet weights"))
            return
        if isinstance(p, Mapping) and set(p) == {"run"} and _is_int(p["run"]) and p["run"] >= 1:
            self.pretrained = {"run": int(p["run"])}
            return
        raise ConfigError(field="pretrained",
                          message='pretrained must be null, "imagenet" or {"run": <run id>}')


def _reject_unknown(data: Mapping[str, Any], kind: type, *, prefix: str) -> None:
    known = {f.name for f in fields(kind)}
    for key in data:
        if key not in known:
            raise ConfigError(field=f"{prefix}{key}", message=(
                f"{prefix}{key} is not a setting; allowed: {', '.join(sorted(known))}"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_cuda_index(value: str) -> bool:
    # ASCII digits only: `str.isdigit` also takes "²" and other digits that torch cannot read.
    return re.fullmatch(r"cuda:[0-9]+", value) is not None


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed or not isinstance(value, str):
        raise ConfigError(field=name, message=f"{name} must be one of {', '.join(allowed)}")


def _integer(name: str, value: Any, low: int, high: int) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise ConfigError(field=name, message=f"{name} must be a whole number from {low} to {high}")


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(field=name, message=f"{name} must be true or false")


def _number(name: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = False, text: str) -> None:
    ok = (_is_number(value) and math.isfinite(value)
          and (value > low if low_open else value >= low) and (value < high if high_open else value <= high))
    if not ok:
        raise ConfigError(field=name, message=f"{name} must be {text}")
