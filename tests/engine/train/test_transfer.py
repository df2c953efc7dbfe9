
import pytest
import torch
import torchvision

from workers.engine import CheckpointError, WeightsNotFound, build_model, fit
from workers.engine.train.checkpoint import load_checkpoint
from workers.engine.train.transfer import imagenet_file_names, load_imagenet_weights, load_start_checkpoint

QUICK = {"epochs": 1, "batch_size": 16, "hidden_units": [16]}


def fake_imagenet_weights(home, arch="resnet18"):
    """torchvision's network with its 1000-class classifier, saved where torchvision caches it."""
    torch.manual_seed(123)
    state = torchvision.models.get_model(arch, weights=None).state_dict()
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / imagenet_file_names(arch)[0])
    return state


def test_imagenet_weights_load_from_the_torch_home_cache(torch_home):
    state = fake_imagenet_weights(torch_home)
    assert imagenet_file_names("resnet18") == ["resnet18-f37072fd.pth"]
    model = build_model({"arch": "resnet18"}, num_classes=4, channels=3, image_size=32)
    load_imagenet_weights(model)
    torch.testing.assert_close(model.features.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    torch.testing.assert_close(model.features.conv1.weight, state["conv1.weight"])
    assert model.head[-1].out_features == 4


def test_grayscale_input_sums_the_rgb_filters(torch_home):
    state = fake_imagenet_weights(torch_home, "mobilenet_v3_small")
    model = build_model({"arch": "mobilenet_v3_small"}, num_classes=2, channels=1, image_size=16)
    load_imagenet_weights(model)
    first = state["features.0.0.weight"]
    torch.testing.assert_close(model.features.features[0][0].weight, first.sum(1, keepdim=True))


def test_missing_imagenet_weights_name_the_file_and_the_folder_and_never_download(torch_home, make_pack, tmp_path):
    pack = make_pack(size=16, channels=3)
    with pytest.raises(WeightsNotFound) as caught:
        fit(pack=pack, config={**QUICK, "arch": "resnet18", "pretrained": "imagenet"}, out_dir=tmp_path / "out")
    message = str(caught.value)
    assert "resnet18-f37072fd.pth" in message and str(torch_home / "hub" / "checkpoints") in message
    assert message.count(";") == 1 and message.count(".") <= 3  # one sentence


def test_an_explicit_weights_file_is_used_and_a_wrong_one_refused(torch_home, tmp_path):
    torch.manual_seed(5)
    state = torchvision.models.get_model("alexnet", weights=None).state_dict()
    torch.save(state, tmp_path / "uploaded.pth")
    model = build_model({"arch": "alexnet"}, num_classes=3, channels=3, image_size=32)
    load_imagenet_weights(model, weights_file=tmp_path / "uploaded.pth")
    torch.testing.assert_close(model.features.features[3].weight, state["features.3.weight"])
    torch.save(torchvision.models.get_model("resnet18", weights=None).state_dict(), tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="do not fit this network"):
        load_imagenet_weights(model, weights_file=tmp_path / "wrong.pth")
    with pytest.raises(WeightsNotFound, match="does not exist"):
        load_imagenet_weights(model, weights_file=tmp_path / "nothing.pth")


def test_imagenet_start_with_a_frozen_backbone_trains_only_the_head(torch_home, make_pack, tmp_path):
    state = fake_imagenet_weights(torch_home, "mobilenet_v3_small")
    pack = make_pack(n=64, size=16, channels=3)
    config = {**QUICK, "arch": "mobilenet_v3_small", "pretrained": "imagenet", "freeze_backbone_epochs": 1}
    result = fit(pack=pack, config=config, out_dir=tmp_path / "frozen")
    trained = load_checkpoint(result.last_checkpoint)["model"]
    for key in ("features.0.0.weight", "features.0.1.running_mean", "features.5.block.0.0.weight",
                "features.12.1.weight"):
        torch.testing.assert_close(trained[f"features.{key}"], state[key], msg=key)
    initial = build_model(config, num_classes=3, channels=3, image_size=16).head.state_dict()
    assert not torch.equal(trained["head.0.weight"], initial["0.weight"])
    # The epoch after the frozen ones trains everything.
    result = fit(pack=pack, config={**config, "epochs": 2}, out_dir=tmp_path / "thawed")
    trained = load_checkpoint(result.last_checkpoint)["model"]
    assert not torch.equal(trained["features.features.0.0.weight"], state["features.0.0.weight"])


def test_starting_from_a_run_keeps_the_head_for_the_same_classes(tiny_pack, tmp_path):
    first = fit(pack=tiny_pack, config=QUICK, out_dir=tmp_path / "first")
    weights = load_checkpoint(first.checkpoint)["model"]
    model = build_model(QUICK, num_classes=3, channels=1, image_size=12)
    assert load_start_checkpoint(model, first.checkpoint, classes=tiny_pack.classes)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, weights[key], msg=key)


def test_starting_from_a_run_with_other_classes_replaces_the_head(tiny_pack, make_pack, tmp_path):
    first = fit(pack=tiny_pack, config=QUICK, out_dir=tmp_path / "first")
    weights = load_checkpoint(first.checkpoint)["model"]
    four = make_pack(classes=["top", "left", "centre", "bottom"], seed=9)
    config = {**QUICK, "pretrained": {"run": 1}, "freeze_backbone_epochs": 1}
    second = fit(pack=four, config=config, out_dir=tmp_path / "second", init_checkpoint=first.checkpoint)
    trained = load_checkpoint(second.checkpoint)["model"]
    assert trained["head.4.weight"].shape[0] == 4
    features = [k for k in weights if k.startswith("features.")]
    assert features and all(torch.equal(trained[k], weights[k]) for k in features)
    with pytest.raises(CheckpointError, match="is a smallcnn network, not lenet5"):
        fit(pack=four, config={**config, "arch": "lenet5"}, out_dir=tmp_path / "third",
            init_checkpoint=first.checkpoint)
