"""The one table of architectures: the names a config accepts, which have torchvision ImageNet
weights, how each is built and where its first convolution sits.

Pure Python on purpose (no torch import), so the web app can validate a config and list the choices
without PyTorch. Adding a network is a row here and, for a new family, a builder in `models.py`
(docs/ARCHITECTURE.md, "Where to change what").
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arch:
    name: str
    # How `models.build_model` makes it: "smallcnn" and "lenet5" are dlstudio's own; "resnet", "vgg"
    # (AlexNet too: a `features` stack and a `classifier`) and "mobilenet" adapt torchvision's network.
    family: str
    # torchvision publishes ImageNet classification weights for it (`pretrained: "imagenet"`).
    imagenet: bool
    # The first convolution inside `features`: where grayscale input is adapted and ImageNet's RGB
    # filters are summed into one channel.
    first_conv: str
    # Where Grad-CAM looks (`serve/explain.py`): the last convolutional stage inside `features`, whose
    # maps still have a spatial layout. Empty for dlstudio's own networks, whose number of blocks
    # follows the image size: for them it is the block just before the global pooling.
    cam_layer: str = ""
    # The smallest image side (px) the network is meant for: torchvision's published minimum input of
    # its ImageNet weights (`meta["min_size"]`; 1 for resnets, mobilenet and our own networks). Training
    # still runs below it (the small-image stems of `models.py`); the model summary warns (`summary.py`).
    min_size: int = 1


ARCHITECTURES: dict[str, Arch] = {arch.name: arch for arch in (
    Arch("smallcnn", "smallcnn", imagenet=False, first_conv="0"),
    Arch("lenet5", "lenet5", imagenet=False, first_conv="0"),
    Arch("alexnet", "vgg", imagenet=True, first_conv="features.0", cam_layer="features", min_size=63),
    Arch("vgg11_bn", "vgg", imagenet=True, first_conv="features.0", cam_layer="features", min_size=32),
    Arch("vgg16", "vgg", imagenet=True, first_conv="features.0", cam_layer="features", min_size=32),
    Arch("vgg16_bn", "vgg", imagenet=True, first_conv="features.0", cam_layer="features", min_size=32),
    Arch("resnet18", "resnet", imagenet=True, first_conv="conv1", cam_layer="layer4"),
    Arch("resnet34", "resnet", imagenet=True, first_conv="conv1", cam_layer="layer4"),
    Arch("resnet50", "resnet", imagenet=True, first_conv="conv1", cam_layer="layer4"),
    Arch("mobilenet_v3_small", "mobilenet", imagenet=True, first_conv="features.0.0", cam_layer="features"),
)}

ARCHS = tuple(ARCHITECTURES)
IMAGENET_ARCHS = tuple(name for name, arch in ARCHITECTURES.items() if arch.imagenet)
