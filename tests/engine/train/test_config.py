import json

import pytest

from workers.engine.errors import ConfigError
from workers.engine.train.config import ARCHS, TrainConfig

API_DEFAULTS = {
    "arch": "smallcnn", "epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": 0.001, "momentum": 0.9,
    "weight_decay": 0, "lr_schedule": "constant", "warmup_epochs": 0, "init": "default", "dropout": 0.25,
    "hidden_units": [128], "batch_norm": True,
    "augment": {"hflip": False, "vflip": False, "crop_pad": 0, "zoom": 0.0, "rotate": 0, "color_jitter": 0.0},
    "normalize": "channel", "equalize": False, "label_smoothing": 0,
    "early_stopping": {"patience": 0, "monitor": "val_loss"}, "pretrained": None, "freeze_backbone_epochs": 0,
    "amp": "auto", "seed": 0, "device": "auto", "deterministic": False,
}

EVERY_KEY = {
    "arch": "resnet18", "epochs": 30, "batch_size": 128, "optimizer": "sgd_nesterov", "lr": 0.05,
    "momentum": 0.8, "weight_decay": 5e-4, "lr_schedule": "step", "step_size": 3, "gamma": 0.5,
    "warmup_epochs": 2, "init": "kaiming", "dropout": 0.5, "hidden_units": [256, 64], "batch_norm": False,
    "augment": {"hflip": True, "vflip": True, "crop_pad": 4, "zoom": 0.2, "rotate": 15, "color_jitter": 0.3},
    "normalize": "mean_image", "equalize": True, "label_smoothing": 0.1,
    "early_stopping": {"patience": 3, "monitor": "val_acc"}, "pretrained": "imagenet",
    "freeze_backbone_epochs": 2, "amp": "off", "seed": 7, "device": "cuda:1",
    "deterministic": True,
}


def test_defaults_are_those_of_the_api():
    config = TrainConfig.from_dict({}).to_dict()
    assert {k: config[k] for k in API_DEFAULTS} == API_DEFAULTS
    assert set(config) == set(API_DEFAULTS) | {"step_size", "gamma"}


def test_every_key_round_trips_through_json():
    config = TrainConfig.from_dict(EVERY_KEY)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.to_dict() == EVERY_KEY


def test_pretrained_run_and_overrides():
    config = TrainConfig.from_dict({"pretrained": {"run": 12}, "augment": {"hflip": True}})
    assert config.pretrained == {"run": 12}
    run = config.with_overrides({"lr": 0.01, "augment": {"rotate": 5}})
    assert run.lr == 0.01 and run.augment.hflip and run.augment.rotate == 5
    assert config.lr == 0.001  # the experiment's config is left alone


@pytest.mark.parametrize("key, value, field, allowed", [
    ("arch", "resnet101", "arch", "smallcnn, lenet5, alexnet"),
    ("epochs", 0, "epochs", "from 1 to 1000"),
    ("epochs", 1001, "epochs", "from 1 to 1000"),
    ("epochs", 2.5, "epochs", "whole number"),
    ("epochs", True, "epochs", "whole number"),
    ("batch_size", 5000, "batch_size", "from 1 to 4096"),
    ("optimizer", "lion", "optimizer", "sgd, sgd_nesterov, rmsprop, adam, adamw"),
    ("lr", 0, "lr", "greater than 0"),
    ("lr", "fast", "lr", "greater than 0"),
    ("lr", float("nan"), "lr", "greater than 0"),
    ("momentum", 1.0, "momentum", "below 1"),
    ("weight_decay", -1, "weight_decay", "0 or more"),
    ("lr_schedule", "linear", "lr_schedule", "constant, step, cosine, onecycle, plateau"),
    ("step_size", 0, "step_size", "from 1"),
    ("gamma", 0, "gamma", "greater than 0"),
    ("warmup_epochs", -1, "warmup_epochs", "from 0"),
    ("warmup_epochs", 10, "warmup_epochs", "less than epochs"),
    ("init", "orthogonal", "init", "default, xavier, kaiming"),
    ("dropout", 0.95, "dropout", "from 0 to 0.9"),
    ("hidden_units", [128, 0], "hidden_units", "from 1 to 65536"),
    ("hidden_units", 128, "hidden_units", "list"),
    ("batch_norm", "yes", "batch_norm", "true or false"),
    ("augment", {"hflip": 1}, "augment.hflip", "true or false"),
    ("augment", {"crop_pad": 100}, "augment.crop_pad", "from 0 to 64"),
    ("augment", {"zoom": 0.9}, "augment.zoom", "from 0 to 0.5"),
    ("augment", {"rotate": 200}, "augment.rotate", "from 0 to 180"),
    ("augment", {"color_jitter": 2}, "augment.color_jitter", "from 0 to 1"),
    ("augment", {"blur": 1}, "augment.blur", "allowed: color_jitter, crop_pad"),
    ("augment", "lots", "augment", "object"),
    ("normalize", "zscore", "normalize", "scale, channel, mean_image"),
    ("equalize", 1, "equalize", "true or false"),
    ("label_smoothing", 0.6, "label_smoothing", "from 0 to 0.5"),
    ("early_stopping", {"patience": -1}, "early_stopping.patience", "from 0"),
    ("early_stopping", {"monitor": "train_loss"}, "early_stopping.monitor", "val_loss, val_acc"),
    ("pretrained", "coco", "pretrained", '"imagenet" or {"run": <run id>}'),
    ("pretrained", {"run": "x"}, "pretrained", '{"run": <run id>}'),
    ("pretrained", {"run": 0}, "pretrained", '{"run": <run id>}'),
    ("pretrained", "imagenet", "pretrained", "resnet18"),  # smallcnn has no ImageNet weights
    ("freeze_backbone_epochs", 11, "freeze_backbone_epochs", "at most epochs"),
    ("amp", "fp16", "amp", "auto, off"),
    ("seed", -1, "seed", "from 0"),
    ("device", "tpu", "device", "auto, cpu, cuda, cuda:N"),
])
def test_bad_values_name_the_field_and_what_is_allowed(key, value, field, allowed):
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({key: value})
    assert caught.value.field == field
    assert allowed in caught.value.message
    assert caught.value.as_json() == {"error": caught.value.message, "field": field}


@pytest.mark.parametrize("device", ["cuda:\u00b2", "cuda:\u0663", "cuda:\uff11", "cuda:", "cuda:-1", "cuda:0\n",
                                    "cuda:0 "])
def test_a_cuda_index_is_ascii_digits_only(device):
    # "cuda:²" passed `str.isdigit` and the run then failed on the worker.
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"device": device})
    assert caught.value.field == "device" and "ASCII digits" in caught.value.message


def test_a_cuda_index_in_ascii_digits_is_accepted():
    assert [TrainConfig.from_dict({"device": d}).device for d in ("cuda:0", "cuda:12", "cuda", "cpu", "auto")] == [
        "cuda:0", "cuda:12", "cuda", "cpu", "auto"]


def test_cross_field_rules():
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"batch_size": 1})
    assert caught.value.field == "batch_size"
    assert TrainConfig.from_dict({"batch_size": 1, "batch_norm": False}).batch_size == 1
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"optimizer": "sgd_nesterov", "momentum": 0})
    assert caught.value.field == "momentum"


def test_unknown_key_is_named():
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"learning_rate": 0.1})
    assert caught.value.field == "learning_rate"
    assert "learning_rate is not a setting" in str(caught.value)


def test_every_arch_of_the_api_is_known():
    assert ARCHS == ("smallcnn", "lenet5", "alexnet", "vgg11_bn", "vgg16", "vgg16_bn", "resnet18", "resnet34",
                     "resnet50", "mobilenet_v3_small")
