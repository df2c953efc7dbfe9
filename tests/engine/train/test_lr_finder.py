import math

import pytest

from workers.engine import lr_range_test
from workers.engine.train.lr_finder import suggest_lr


def test_range_test_sweeps_exponentially_and_suggests_a_rate_inside_the_sweep(tiny_pack):
    result = lr_range_test(pack=tiny_pack, config={"batch_size": 16, "optimizer": "sgd"}, start_lr=1e-5,
                           end_lr=1.0, steps=40)
    assert len(result.lrs) == len(result.losses) == len(result.pairs) == 40
    assert result.lrs[0] == pytest.approx(1e-5) and result.lrs[-1] == pytest.approx(1.0)
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios))
    assert all(math.isfinite(loss) for loss in result.losses)
    assert 1e-5 <= result.suggested_lr <= 1.0
    assert min(result.losses) < result.losses[0]  # the sweep found rates that learn


def test_range_test_stops_when_the_loss_explodes(tiny_pack):
    result = lr_range_test(pack=tiny_pack, config={"batch_size": 16, "optimizer": "sgd", "batch_norm": False},
                           start_lr=1e-3, end_lr=1e6, steps=100)
    assert 10 < len(result.lrs) < 100
    assert result.lrs[-1] < 1e6


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = [10 ** (-6 + i * 0.5) for i in range(12)]
    losses = [2.0, 2.0, 1.99, 1.95, 1.7, 1.0, 0.6, 0.5, 0.45, 0.6, 1.5, 3.0]
    assert suggest_lr(lrs, losses) == pytest.approx(lrs[5])
    assert suggest_lr(lrs[:3], losses[:3]) is None


def test_a_batch_larger_than_the_train_split_still_sweeps(tiny_pack):
    # Whole batches only: without lowering the batch size to the split's, there would be none, forever.
    result = lr_range_test(pack=tiny_pack, config={"batch_size": 4096}, start_lr=1e-5, end_lr=1.0, steps=15)
    assert len(result.lrs) == 15


def test_noise_at_the_start_of_the_sweep_is_not_the_suggestion():
    lrs = [10 ** (-7 + i * 0.25) for i in range(30)]
    losses = [2.0, 0.5, 2.0] + [2.0 - 0.05 * i for i in range(20)] + [1.0, 1.5, 2.5, 4.0, 6.0, 9.0, 14.0]
    suggested = suggest_lr(lrs, losses)
    assert suggested >= lrs[3]  # the early dip from 2.0 to 0.5 is noise of a barely started average
