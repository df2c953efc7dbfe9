import math

import pytest
import torch

from workers.engine.train.config import TrainConfig
from workers.engine.train.optim import PLATEAU_PATIENCE, LRSchedule, build_optimizer


def schedule(steps_per_epoch=10, **settings):
    config = TrainConfig.from_dict({"lr": 0.1, "epochs": 10, **settings})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return LRSchedule(optimizer, config=config, steps_per_epoch=steps_per_epoch), optimizer


@pytest.mark.parametrize("name, kind, extra", [
    ("sgd", torch.optim.SGD, {"nesterov": False}), ("sgd_nesterov", torch.optim.SGD, {"nesterov": True}),
    ("rmsprop", torch.optim.RMSprop, {"momentum": 0.8}), ("adam", torch.optim.Adam, {"weight_decay": 0.01}),
    ("adamw", torch.optim.AdamW, {"weight_decay": 0.01}),
])
def test_optimizers_are_built_with_the_configured_settings(name, kind, extra):
    config = TrainConfig.from_dict({"optimizer": name, "lr": 0.02, "momentum": 0.8, "weight_decay": 0.01})
    optimizer = build_optimizer(torch.nn.Linear(2, 2), config)
    assert type(optimizer) is kind
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.02
    assert all(group[k] == v for k, v in extra.items())


def test_constant_rate_with_linear_warm_up():
    s, optimizer = schedule(lr_schedule="constant", warmup_epochs=2)
    assert [round(s.lr_at(step), 6) for step in (0, 9, 19, 20, 99)] == [0.005, 0.05, 0.1, 0.1, 0.1]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    for _ in range(20):
        s.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_step_decays_every_step_size_epochs():
    s, _ = schedule(lr_schedule="step", step_size=3, gamma=0.5)
    assert [s.lr_at(epoch * 10) for epoch in (0, 2, 3, 6, 9)] == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.0125])


def test_cosine_falls_from_the_rate_to_zero_after_warm_up():
    s, _ = schedule(lr_schedule="cosine", warmup_epochs=1)
    assert s.lr_at(9) == pytest.approx(0.1)
    assert s.lr_at(10) == pytest.approx(0.1)
    assert s.lr_at(55) == pytest.approx(0.05)
    assert s.lr_at(99) < 0.001


def test_onecycle_rises_to_the_rate_then_anneals():
    s, _ = schedule(lr_schedule="onecycle")
    rates = [s.lr_at(step) for step in range(100)]
    assert rates[0] == pytest.approx(0.1 / 25)
    assert max(rates) == pytest.approx(0.1) and rates.index(max(rates)) == 30
    assert rates[-1] < 1e-4
    warm, _ = schedule(lr_schedule="onecycle", warmup_epochs=5)
    assert warm.lr_at(50) == pytest.approx(0.1)


def test_plateau_divides_after_epochs_without_improvement():
    s, optimizer = schedule(lr_schedule="plateau", gamma=0.2)
    s.end_epoch(1.0)
    for _ in range(PLATEAU_PATIENCE - 1):
        s.end_epoch(1.0)
        assert s.lr == pytest.approx(0.1)
    s.end_epoch(1.5)
    assert s.lr == pytest.approx(0.02) and optimizer.param_groups[0]["lr"] == pytest.approx(0.02)
    s.end_epoch(0.5)
    assert s.lr == pytest.approx(0.02)


def test_schedule_state_round_trips():
    s, _ = schedule(lr_schedule="plateau")
    for _ in range(7):
        s.step()
    s.end_epoch(2.0)
    s.end_epoch(3.0)
    s.end_epoch(3.0)
    again, optimizer = schedule(lr_schedule="plateau")
    again.load_state_dict(s.state_dict())
    assert again.state_dict() == s.state_dict()
    assert optimizer.param_groups[0]["lr"] == s.lr
    assert not math.isinf(s.plateau_best)
