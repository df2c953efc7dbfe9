import pytest
import torchvision

from workers.engine import build_model, model_summary
from workers.engine.train.archs import ARCHITECTURES, IMAGENET_ARCHS
from workers.engine.train.summary import _summary

SIZE = 32  # every arch runs at 32 px, and all but alexnet without a too-small warning


def parameters(model, *, trainable=False):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_the_totals_are_those_of_the_network_training_builds(arch, channels):
    size = max(SIZE, ARCHITECTURES[arch].min_size)
    summary = model_summary({"arch": arch}, num_classes=5, channels=channels, image_size=size)
    model = build_model({"arch": arch}, num_classes=5, channels=channels, image_size=size)
    assert summary["total_params"] == parameters(model)
    assert summary["trainable_params"] == summary["total_params"]  # nothing frozen
    assert summary["mult_adds"] > summary["total_params"] // 2
    assert summary["warnings"] == []
    layers = summary["layers"]
    assert layers and sum(layer["params"] for layer in layers) == summary["total_params"]
    assert all(layer["name"] and layer["type"] and layer["output_shape"] and min(layer["output_shape"]) >= 1
               for layer in layers)
    last = model.head[-1]
    assert layers[0]["name"].startswith("features.") and layers[-1] == {
        "name": f"head.{len(model.head) - 1}", "type": "Linear", "output_shape": [5],
        "params": 5 * (last.in_features + 1)}
    assert summary["input"] == {"channels": channels, "image_size": size, "num_classes": 5}


def test_the_head_settings_change_the_rows_and_totals():
    config = {"arch": "smallcnn", "hidden_units": [32, 16], "batch_norm": False, "dropout": 0.0}
    summary = model_summary(config, num_classes=3, channels=1, image_size=28)
    assert summary["total_params"] == parameters(build_model(config, num_classes=3, channels=1, image_size=28))
    head = [layer for layer in summary["layers"] if layer["name"].startswith("head.")]
    assert [(layer["type"], layer["output_shape"]) for layer in head] == [
        ("Linear", [32]), ("ReLU", [32]), ("Linear", [16]), ("ReLU", [16]), ("Linear", [3])]
    wider = model_summary({**config, "hidden_units": [64, 16]}, num_classes=3, channels=1, image_size=28)
    assert wider["total_params"] > summary["total_params"] and wider["mult_adds"] > summary["mult_adds"]


def test_a_frozen_backbone_leaves_only_the_head_trainable_in_the_first_epoch():
    config = {"arch": "resnet18", "epochs": 3, "freeze_backbone_epochs": 1}
    summary = model_summary(config, num_classes=4, channels=3, image_size=SIZE)
    model = build_model(config, num_classes=4, channels=3, image_size=SIZE)
    assert summary["total_params"] == parameters(model)
    assert summary["trainable_params"] == parameters(model.head) < summary["total_params"]


def test_multiply_adds_match_the_published_figures_at_224_px():
    # torchvision's ResNet-50 is 4.09 G multiply-adds per 224 px image; this one has a 10-class head.
    summary = model_summary({"arch": "resnet50", "hidden_units": []}, num_classes=10, channels=3, image_size=224)
    assert 4.05e9 < summary["mult_adds"] < 4.12e9


def test_a_huge_head_is_described_without_allocating_it():
    # 8 x 65536 units: 30 billion parameters, 120 GB as float32. Described from shapes only.
    config = {"arch": "smallcnn", "hidden_units": [65536] * 8, "batch_norm": False, "dropout": 0.0}
    summary = model_summary(config, num_classes=10, channels=3, image_size=SIZE)
    head = (128 * 4 * 4 + 1) * 65536 + 7 * (65536 + 1) * 65536 + (65536 + 1) * 10
    assert summary["total_params"] > head
    assert sum(layer["params"] for layer in summary["layers"] if layer["name"].startswith("head.")) == head


def test_answers_are_copies_of_the_cached_summary():
    first = model_summary({"arch": "lenet5"}, num_classes=2, channels=1, image_size=28)
    first["layers"].clear()
    first["warnings"].append("changed")
    again = model_summary({"arch": "lenet5"}, num_classes=2, channels=1, image_size=28)
    assert again["layers"] and again["warnings"] == []
    assert _summary.cache_info().hits >= 1


@pytest.mark.parametrize("size,warns", [(28, True), (62, True), (63, False), (64, False), (224, False)])
def test_alexnet_warns_below_the_size_it_is_meant_for(size, warns):
    warnings = model_summary({"arch": "alexnet"}, num_classes=10, channels=1, image_size=size)["warnings"]
    if warns:
        assert warnings == [f"alexnet is meant for images of at least 63 px and these are {size} px; a network "
                            "for small images (smallcnn, lenet5) suits them better."]
    else:
        assert warnings == []


@pytest.mark.parametrize("arch,size,first", [("vgg16", 16, "features.features.24"),
                                             ("resnet18", 8, "features.layer4.0.conv2")])
def test_a_feature_map_shrunk_to_one_pixel_is_named(arch, size, first):
    summary = model_summary({"arch": arch}, num_classes=10, channels=3, image_size=size)
    [warning] = summary["warnings"]
    assert warning.startswith(f"At {size} px the feature map of {arch} is down to a single pixel at {first},")
    assert model_summary({"arch": arch}, num_classes=10, channels=3, image_size=size * 2)["warnings"] == []


def test_a_network_that_cannot_run_on_the_images_says_so():
    summary = model_summary({"arch": "alexnet"}, num_classes=10, channels=3, image_size=7)
    assert summary["warnings"] == [
        "alexnet cannot run on 7 px images: they shrink to nothing at features.features.12; use larger images "
        "or a network for small images (smallcnn, lenet5)."]
    assert summary["mult_adds"] is None
    assert summary["total_params"] == parameters(build_model({"arch": "alexnet"}, 10, 3, 7))
    assert summary["layers"][0]["output_shape"] == [64, 7, 7] and summary["layers"][-1]["output_shape"] is None


@pytest.mark.parametrize("arch", IMAGENET_ARCHS)
def test_min_size_is_torchvisions_published_minimum(arch):
    published = torchvision.models.get_model_weights(arch).DEFAULT.meta["min_size"]
    assert ARCHITECTURES[arch].min_size == published[0] == published[1]


def test_a_bad_input_is_refused():
    with pytest.raises(ValueError, match="image_size"):
        model_summary({}, num_classes=2, channels=3, image_size=0)
