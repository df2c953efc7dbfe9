"""The diagnosis on crafted metric series: each pattern flagged as what it is, noise never."""
import math
import random

import pytest

from apps.runs.diagnosis import KINDS, diagnose


def rows(train_loss, val_loss=None, train_acc=None, val_acc=None, lr=1e-3):
    n = len(train_loss)
    val_loss = val_loss or [None] * n
    train_acc = train_acc or [max(0.0, 1 - t / 2.5) for t in train_loss]
    val_acc = val_acc or [None if v is None else max(0.0, 1 - v / 2.5) for v in val_loss]
    return [{"epoch": i + 1, "train_loss": train_loss[i], "train_acc": train_acc[i], "val_loss": val_loss[i],
             "val_acc": val_acc[i], "lr": lr, "seconds": 10.0, "images_per_s": 1000.0} for i in range(n)]


def check_shape(result):
    assert set(result) == {"overfitting", "since_epoch", "message", "kind"}
    assert result["kind"] in KINDS
    assert result["message"].endswith(".") and len(result["message"]) < 400
    assert result["overfitting"] == (result["kind"] == "overfitting")
    assert (result["since_epoch"] is not None) == result["overfitting"]
    return result


def test_classic_overfitting_is_flagged_from_the_epoch_after_the_best_val_loss():
    train = [2.0 * 0.8 ** e for e in range(15)]
    val = [2.1, 1.6, 1.3, 1.1, 0.95, 0.9, 0.92, 0.97, 1.03, 1.1, 1.18, 1.25, 1.33, 1.4, 1.5]  # best: epoch 6
    result = check_shape(diagnose(rows(train, val), num_classes=10))
    assert result["kind"] == "overfitting"
    assert result["since_epoch"] == 7
    assert "epoch 7" in result["message"] and "epoch 6" in result["message"]
    for advice in ("augmentation", "dropout", "weight decay", "early stopping", "more data"):
        assert advice in result["message"]


def test_val_loss_rising_needs_three_epochs_beyond_the_margin():
    train = [2.0 * 0.8 ** e for e in range(8)]
    val = [2.0, 1.5, 1.2, 1.0, 0.9, 1.05, 1.06, 1.04]  # only 3 epochs after the best, all > 0.99
    assert diagnose(rows(train, val))["since_epoch"] == 6
    assert diagnose(rows(train[:7], val[:7]))["kind"] == "healthy"  # two epochs are not yet a trend


def test_val_loss_rising_while_train_loss_rises_too_is_not_overfitting():
    train = [2.0, 1.5, 1.2, 1.1, 1.1, 1.15, 1.2, 1.25]
    val = [2.0, 1.5, 1.2, 1.0, 0.95, 1.1, 1.2, 1.3]
    assert diagnose(rows(train, val))["kind"] != "overfitting"


def test_widening_accuracy_gap_is_flagged_even_while_val_loss_still_falls():
    n = 14
    train = [1.5 * 0.85 ** e for e in range(n)]
    val = [1.6 - 0.04 * e for e in range(n)]
    train_acc = [min(0.99, 0.5 + 0.05 * e) for e in range(n)]  # 0.50 .. 0.99
    val_acc = [0.5 + 0.01 * e for e in range(n)]  # 0.50 .. 0.63
    result = check_shape(diagnose(rows(train, val, train_acc, val_acc), num_classes=10))
    assert result["kind"] == "overfitting"
    gaps = [t - v for t, v in zip(train_acc, val_acc)]
    first_large = next(i for i, g in enumerate(gaps) if g > 0.10) + 1
    assert result["since_epoch"] == first_large == 4
    assert "gap" in result["message"]


def test_a_large_but_steady_gap_is_not_flagged():
    n = 12
    noise = random.Random(1)
    train_acc = [0.9 + noise.uniform(-0.01, 0.01) for _ in range(n)]
    val_acc = [0.77 + noise.uniform(-0.01, 0.01) for _ in range(n)]
    train = [0.4 - 0.005 * e for e in range(n)]
    val = [0.7 - 0.004 * e for e in range(n)]
    assert diagnose(rows(train, val, train_acc, val_acc))["kind"] == "healthy"


@pytest.mark.parametrize("seed", range(20))
def test_a_healthy_noisy_run_is_not_flagged(seed):
    noise = random.Random(seed)
    n = 30
    train = [0.2 + 2.0 * math.exp(-e / 5) * noise.uniform(0.97, 1.03) for e in range(n)]
    val = [0.35 + 2.0 * math.exp(-e / 5) + noise.gauss(0, 0.015) for e in range(n)]
    train_acc = [0.95 - 0.85 * math.exp(-e / 5) + noise.gauss(0, 0.005) for e in range(n)]
    val_acc = [0.90 - 0.80 * math.exp(-e / 5) + noise.gauss(0, 0.012) for e in range(n)]
    for end in range(1, n + 1):  # as it grows, epoch by epoch
        result = check_shape(diagnose(rows(train[:end], val[:end], train_acc[:end], val_acc[:end]), num_classes=10))
        assert result["kind"] in ("too_early", "healthy"), (end, result)
    assert result["kind"] == "healthy"


def test_nan_loss_is_divergence_even_in_the_first_epoch():
    result = check_shape(diagnose(rows([float("nan")], [float("nan")], [0.1], [0.1])))
    assert result["kind"] == "diverging"
    assert "learning rate" in result["message"] and "epoch 1" in result["message"]
    later = diagnose(rows([2.0, 1.5, float("inf"), 3.0], [2.0, 1.6, 2.5, 3.0]))
    assert later["kind"] == "diverging" and "epoch 3" in later["message"]


def test_training_loss_rising_for_several_epochs_is_divergence():
    train = [2.0, 1.6, 1.5, 2.0, 2.6, 3.4, 4.5]
    val = [2.1, 1.7, 1.6, 2.2, 2.8, 3.6, 4.8]
    result = check_shape(diagnose(rows(train, val), num_classes=10))
    assert result["kind"] == "diverging"
    assert "since epoch 4" in result["message"]
    assert "learning rate" in result["message"] and "warm-up" in result["message"] and "3–10×" in result["message"]


def test_a_one_epoch_bump_in_training_loss_is_not_divergence():
    train = [2.0, 1.6, 1.4, 1.9, 1.3, 1.2, 1.1, 1.05]
    val = [2.0, 1.7, 1.5, 1.9, 1.4, 1.3, 1.2, 1.15]
    assert diagnose(rows(train, val))["kind"] == "healthy"


def test_low_flat_accuracies_are_underfitting():
    n = 10
    train = [1.9 - 0.01 * e for e in range(n)]
    val = [1.95 - 0.01 * e for e in range(n)]
    train_acc = [0.22, 0.25, 0.26, 0.27, 0.27, 0.28, 0.27, 0.28, 0.28, 0.28]
    val_acc = [0.21, 0.24, 0.25, 0.26, 0.26, 0.26, 0.27, 0.26, 0.27, 0.26]
    result = check_shape(diagnose(rows(train, val, train_acc, val_acc), num_classes=10))
    assert result["kind"] == "underfitting"
    assert "more epochs" in result["message"] and "bigger model" in result["message"]
    assert "learning rate" in result["message"]
    # 0.28 is far from low for a 100-class problem... but low for two classes.
    assert diagnose(rows(train, val, train_acc, val_acc), num_classes=100)["kind"] == "healthy"


def test_accuracy_stuck_at_chance_is_underfitting_with_its_own_advice():
    n = 8
    result = check_shape(diagnose(rows([2.303] * n, [2.303] * n, [0.1] * n, [0.1] * n), num_classes=10))
    assert result["kind"] == "underfitting"
    assert "chance" in result["message"] and "learning rate" in result["message"]


def test_low_but_still_climbing_accuracies_are_not_underfitting():
    n = 8
    train_acc = [0.10 + 0.03 * e for e in range(n)]
    val_acc = [0.10 + 0.028 * e for e in range(n)]
    train = [2.3 - 0.1 * e for e in range(n)]
    val = [2.3 - 0.09 * e for e in range(n)]
    assert diagnose(rows(train, val, train_acc, val_acc), num_classes=10)["kind"] == "healthy"


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_early(n):
    result = check_shape(diagnose(rows([2.0, 1.5][:n] + [1.4] * max(0, n - 2), [2.1, 1.6][:n])))
    assert result["kind"] == "too_early"
    assert "3 epochs" in result["message"]


def test_no_validation_split():
    train = [2.0 * 0.8 ** e for e in range(6)]
    result = check_shape(diagnose(rows(train), num_classes=10))
    assert result["kind"] == "no_validation"
    assert "validation" in result["message"]


def test_divergence_is_still_seen_without_a_validation_split():
    assert diagnose(rows([2.0, 1.5, 1.4, 2.0, 2.9, 4.0]))["kind"] == "diverging"


def test_rows_without_training_loss_are_ignored():
    train = [2.0 * 0.8 ** e for e in range(6)]
    val = [2.1 * 0.8 ** e for e in range(6)]
    series = rows(train, val)
    series[2]["train_loss"] = None
    assert diagnose(series)["kind"] == "healthy"


def test_a_gap_that_closes_again_is_not_flagged():
    n = 12
    train_acc = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.93, 0.94, 0.95, 0.95, 0.96]
    val_acc = [0.5, 0.52, 0.55, 0.58, 0.6, 0.62, 0.68, 0.74, 0.8, 0.83, 0.84, 0.85]
    train = [1.5 * 0.85 ** e for e in range(n)]
    val = [1.6 - 0.05 * e for e in range(n)]
    assert diagnose(rows(train, val, train_acc, val_acc))["kind"] == "healthy"


def test_a_near_zero_training_loss_wobbling_is_not_divergence():
    # Seen on a run that had learnt its task: 0.002 to 0.07 and back is noise, not a too-high rate.
    train = [0.12, 0.02, 0.012, 0.013, 0.002, 0.07, 0.004, 0.002, 0.003, 0.1, 0.07, 0.009, 0.005, 0.03, 0.05, 0.04]
    result = diagnose(rows(train, val_loss=[0.01] * len(train), train_acc=[1.0] * len(train),
                           val_acc=[1.0] * len(train)), num_classes=2)
    assert result["kind"] == "healthy", result
