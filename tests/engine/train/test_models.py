import math

import pytest
import torch
from torch import nn

from workers.engine import build_model
from workers.engine.train.config import ARCHS


def convs(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_classifies_and_trains_on_small_grayscale_images(arch):
    torch.manual_seed(0)
    model = build_model({"arch": arch, "hidden_units": [16]}, num_classes=7, channels=1, image_size=16)
    assert convs(model)[0].in_channels == 1
    assert model.head[-1].out_features == 7
    with torch.no_grad():
        assert model.eval()(torch.rand(2, 1, 16, 16)).shape == (2, 7)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    first = convs(model)[0].weight.detach().clone()
    loss = nn.functional.cross_entropy(model(torch.rand(4, 1, 16, 16)), torch.tensor([0, 1, 2, 6]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert not torch.equal(first, convs(model)[0].weight)  # gradients reach the first layer


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small", "alexnet"])
def test_torchvision_archs_use_their_own_stem_above_64_px(arch):
    big = build_model({"arch": arch}, num_classes=3, channels=3, image_size=96).eval()
    small = build_model({"arch": arch}, num_classes=3, channels=3, image_size=32).eval()
    assert convs(big)[0].stride != (1, 1)
    assert convs(small)[0].stride == (1, 1)  # small inputs keep their resolution in the stem
    with torch.no_grad():
        assert big(torch.rand(2, 3, 96, 96)).shape == (2, 3)


def test_resnet_small_stem_drops_the_max_pool():
    assert isinstance(build_model({"arch": "resnet18"}, 3, 3, 32).features.maxpool, nn.Identity)
    assert isinstance(build_model({"arch": "resnet18"}, 3, 3, 128).features.maxpool, nn.MaxPool2d)


def test_smallcnn_is_conv_bn_relu_pool_blocks_of_32_64_128():
    model = build_model({}, num_classes=10, channels=1, image_size=28)
    assert [c.out_channels for c in convs(model)] == [32, 64, 128]
    kinds = [type(m) for m in model.features][:4]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    # 8 px images have room for two blocks only.
    assert [c.out_channels for c in convs(build_model({}, 10, 1, 8))] == [32, 64]


def test_batch_norm_off_removes_it_everywhere_we_own():
    model = build_model({"batch_norm": False}, num_classes=3, channels=1, image_size=28)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
    assert all(c.bias is not None for c in convs(model))


def test_head_follows_hidden_units_dropout_and_batch_norm():
    model = build_model({"hidden_units": [64, 32], "dropout": 0.4}, num_classes=5, channels=3, image_size=16)
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears][1:] == [(64, 32), (32, 5)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.head) == 2
    dropout = [m for m in model.head if isinstance(m, nn.Dropout)]
    assert len(dropout) == 1 and dropout[0].p == 0.4
    assert isinstance(model.head[-2], nn.Dropout)  # right before the classifier
    bare = build_model({"hidden_units": [], "dropout": 0}, num_classes=5, channels=3, image_size=16)
    assert [type(m) for m in bare.head] == [nn.Linear]


def test_lenet5_has_its_120_and_84_unit_layers():
    model = build_model({"arch": "lenet5"}, num_classes=10, channels=1, image_size=28)
    widths = [m.out_features for m in model.features if isinstance(m, nn.Linear)]
    assert widths == [120, 84]
    assert [c.out_channels for c in convs(model)] == [6, 16]


def test_xavier_init_is_uniform_within_the_glorot_bound():
    torch.manual_seed(0)
    model = build_model({"init": "xavier"}, num_classes=3, channels=1, image_size=16)
    conv = convs(model)[1]
    fan_in, fan_out = conv.weight[0].numel(), conv.weight.shape[0] * conv.weight[0, 0].numel()
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.95 * bound
    last = model.head[-1]
    assert torch.all(last.bias == 0)


def test_kaiming_init_has_the_he_standard_deviation():
    torch.manual_seed(0)
    model = build_model({"init": "kaiming"}, num_classes=3, channels=1, image_size=16)
    conv = convs(model)[2]
    fan_out = conv.weight.shape[0] * conv.weight[0, 0].numel()
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
    torch.manual_seed(0)
    default = build_model({}, num_classes=3, channels=1, image_size=16)
    assert convs(default)[2].weight.std().item() < 0.7 * conv.weight.std().item()

