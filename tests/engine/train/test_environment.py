"""The environment a run records, and the `deterministic` config key."""
import os
import platform
import socket

import pytest
import torch
import torchvision

from workers.engine import ConfigError, TrainConfig, environment, fit
from workers.engine.train.checkpoint import load_checkpoint
from workers.engine.train.environment import KEYS

QUICK = {"epochs": 2, "batch_size": 32, "hidden_units": [32], "deterministic": True, "seed": 7}


def test_the_environment_on_a_cpu_has_every_key():
    env = environment(torch.device("cpu"), code="abc1234", deterministic=True)
    assert tuple(env) == KEYS
    assert env["python"] == platform.python_version() and env["torch"] == torch.__version__
    assert env["torchvision"] == torchvision.__version__ and env["host"] == socket.gethostname()
    assert env["gpu"] == "cpu" and env["code"] == "abc1234" and env["deterministic"] is True
    if not torch.cuda.is_available():
        assert env["cuda"] is None and env["cudnn"] is None


def test_deterministic_defaults_to_false_and_must_be_a_boolean():
    assert TrainConfig.from_dict({}).deterministic is False
    with pytest.raises(ConfigError, match="deterministic must be true or false"):
        TrainConfig.from_dict({"deterministic": "yes"})


def flags():
    return (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))


def test_two_deterministic_runs_give_the_same_metrics_and_weights_and_leave_the_flags(tiny_pack, tmp_path):
    before = flags()
    seen = []

    def during(metrics):
        seen.append(flags())

    results = [fit(pack=tiny_pack, config=QUICK, out_dir=tmp_path / name, on_epoch=during) for name in "ab"]
    assert seen and all(f == (True, False, True, ":4096:8") for f in seen)
    assert flags() == before
    first, second = results
    strip = [{k: v for k, v in m.items() if k not in ("seconds", "images_per_s")} for m in first.history]
    assert strip == [{k: v for k, v in m.items() if k not in ("seconds", "images_per_s")} for m in second.history]
    weights = [load_checkpoint(r.last_checkpoint)["model"] for r in results]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_run_that_fails_under_deterministic_still_restores_the_flags(tiny_pack, tmp_path):
    before = flags()
    with pytest.raises(ValueError):
        fit(pack=tiny_pack, config={**QUICK, "pretrained": {"run": 1}}, out_dir=tmp_path / "x")
    assert flags() == before
