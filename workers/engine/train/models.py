"""The networks of the architecture table (`archs.py`): every one is `features` (image -> flat vector) + `head`.

Splitting every network the same way is what makes transfer simple: ImageNet weights and a
previous run's weights load into `features`, the head is replaced when the classes differ, and
`freeze_backbone_epochs` freezes `features`. torchvision networks are always built with
`weights=None`, so nothing is ever downloaded; `transfer.py` loads weights from local files.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch import nn

from .archs import ARCHITECTURES, Arch
from .config import TrainConfig

# Inputs this small get a stem that does not throw away resolution (stride 1, no early max-pool).
SMALL_IMAGE = 64


class Classifier(nn.Module):
    def __init__(self, *, arch: str, features: nn.Module, head: nn.Sequential, first_conv: str):
        super().__init__()
        self.arch = arch
        self.features = features
        self.head = head
        # Name of the first convolution inside `features` (where grayscale weights are adapted).
        self.first_conv = first_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_model(config: Mapping[str, Any] | TrainConfig, num_classes: int, channels: int,
                image_size: int) -> Classifier:
    """Exactly the network that training with `config` builds, before any pretrained weights."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config)
    arch = ARCHITECTURES[config.arch]
    features, feature_dim = _features(arch, channels=channels, image_size=image_size, batch_norm=config.batch_norm)
    head = build_head(in_features=feature_dim, hidden_units=config.hidden_units, dropout=config.dropout,
                      batch_norm=config.batch_norm, num_classes=num_classes)
    model = Classifier(arch=arch.name, features=features, head=head, first_conv=arch.first_conv)
    initialize(model, scheme=config.init)
    return model


def build_head(*, in_features: int, hidden_units: list[int], dropout: float, batch_norm: bool,
               num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_features
    for units in hidden_units:
        layers.append(nn.Linear(width, units, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(nn.ReLU(inplace=True))
        width = units
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def initialize(module: nn.Module, *, scheme: str) -> None:
    """`default` keeps PyTorch's and torchvision's own initialisation."""
    if scheme == "default":
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "kaiming":
                # fan_out for convolutions as torchvision's ResNet does; ReLU follows every layer.
                mode = "fan_out" if isinstance(m, nn.Conv2d) else "fan_in"
                nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            else:
                raise ValueError(f"init must be one of default, xavier, kaiming, not {scheme!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --- our own networks ------------------------------------------------------------------------

def _conv_block(c_in: int, c_out: int, *, kernel: int, padding: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return layers


def _smallcnn(*, channels: int, image_size: int, batch_norm: bool):
    """Conv-BN-ReLU-max-pool blocks of 32, 64, 128 filters: three from 16 px up, fewer below."""
    blocks = max(1, min(3, int(math.log2(max(image_size, 2))) - 1))
    layers: list[nn.Module] = []
    width, size = channels, image_size
    for out in (32, 64, 128)[:blocks]:
        layers += _conv_block(width, out, kernel=3, padding=1, batch_norm=batch_norm)
        width, size = out, size // 2
    # A small spatial grid keeps position information without letting big images blow up the head.
    grid = max(1, min(size, 4))
    layers += [nn.AdaptiveAvgPool2d(grid), nn.Flatten()]
    return nn.Sequential(*layers), width * grid * grid


def _lenet5(*, channels: int, image_size: int, batch_norm: bool):
    """LeNet-5 with ReLU and max-pool; C1 pads 28 px inputs to the 32 px of the paper."""
    c3_padding = 2 if image_size < 16 else 0  # tiny inputs would run out of pixels at C3
    layers = _conv_block(channels, 6, kernel=5, padding=2, batch_norm=batch_norm)
    layers += _conv_block(6, 16, kernel=5, padding=c3_padding, batch_norm=batch_norm)
    layers += [nn.AdaptiveAvgPool2d(5), nn.Flatten()]
    for c_in, c_out in ((16 * 5 * 5, 120), (120, 84)):
        layers.append(nn.Linear(c_in, c_out, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(c_out))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers), 84


# --- torchvision networks --------------------------------------------------------------------

def _torchvision(name: str) -> nn.Module:
    import torchvision  # noqa: PLC0415  (only the archs that need it pay for the import)

    return torchvision.models.get_model(name, weights=None)


def _resnet(name: str, *, small: bool) -> tuple[nn.Module, int]:
    model = _torchvision(name)
    if small:
        model.conv1.stride = (1, 1)
        model.maxpool = nn.Identity()
    feature_dim = model.fc.in_features
    model.fc = nn.Identity()
    return model, feature_dim


def _vgg(name: str, *, small: bool) -> tuple[nn.Module, int]:
    """VGG and AlexNet: a `features` stack of convolutions and pools, then a `classifier`."""
    model = _torchvision(name)
    if small:
        if name == "alexnet":  # 11x11 stride 4 would leave a 28 px image almost nothing
            model.features[0].stride, model.features[0].padding = (1, 1), (5, 5)
        for m in model.features:
            if isinstance(m, nn.MaxPool2d):
                m.ceil_mode = True  # 1 px stays 1 px instead of vanishing
    # Global pooling instead of the fixed 7x7 grid: the replaced classifier no longer needs it.
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    feature_dim = [m for m in model.features if isinstance(m, nn.Conv2d)][-1].out_channels
    model.classifier = nn.Identity()
    return model, feature_dim


def _mobilenet(name: str, *, small: bool) -> tuple[nn.Module, int]:
    model = _torchvision(name)
    if small:
        model.features[0][0].stride = (1, 1)
    feature_dim = model.classifier[0].in_features
    model.classifier = nn.Identity()
    return model, feature_dim


def _replace_conv_input(model: nn.Module, path: str, channels: int) -> None:
    old: nn.Conv2d = model.get_submodule(path)
    new = nn.Conv2d(channels, old.out_channels, old.kernel_size, stride=old.stride, padding=old.padding,
                    dilation=old.dilation, groups=old.groups, bias=old.bias is not None)
    parent_path, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, name, new)


_OWN: dict[str, Callable[..., tuple[nn.Module, int]]] = {"smallcnn": _smallcnn, "lenet5": _lenet5}
_TORCHVISION: dict[str, Callable[..., tuple[nn.Module, int]]] = {
    "resnet": _resnet, "vgg": _vgg, "mobilenet": _mobilenet}
assert {arch.family for arch in ARCHITECTURES.values()} == set(_OWN) | set(_TORCHVISION)


def _features(arch: Arch, *, channels: int, image_size: int, batch_norm: bool) -> tuple[nn.Module, int]:
    """The arch's `features` (image -> flat vector) and the length of that vector."""
    if arch.family in _OWN:
        return _OWN[arch.family](channels=channels, image_size=image_size, batch_norm=batch_norm)
    features, feature_dim = _TORCHVISION[arch.family](arch.name, small=image_size <= SMALL_IMAGE)
    if channels != 3:
        _replace_conv_input(features, arch.first_conv, channels)
    return features, feature_dim
