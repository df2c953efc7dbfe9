"""What a run's curves say, in one sentence a student can act on: overfitting, underfitting,
divergence or healthy. Pure Python on the rows of `/api/runs/<id>/metrics` (epoch order), so
the run page, the API and the tests all get the same answer.

Every rule asks for a pattern that lasts several epochs and clears a margin, because a single
noisy epoch of an ordinary run must never be flagged; the thresholds are the module constants.
"""
from __future__ import annotations

import math

MIN_EPOCHS = 3  # below this nothing can be told from noise
STREAK = 3  # epochs a pattern must last before it counts
# Val loss counts as risen when it is this far above its best (relative, plus an absolute floor
# so a tiny loss such as 0.01 does not turn noise of 0.002 into "overfitting").
VAL_RISE_REL, VAL_RISE_ABS = 0.10, 0.005
# The train-val accuracy gap: large above 0.10; widening when its 3-epoch mean grew by 0.02.
GAP_LARGE, GAP_GROWTH = 0.10, 0.02
# Training loss this far above its best for STREAK epochs is instability, not noise: an epoch's
# training loss is an average over the whole epoch and is far smoother than val loss.
DIVERGE_REL, DIVERGE_ABS = 0.20, 0.10
UNDERFIT_MIN_EPOCHS = 5
# "Low" accuracy: less than a quarter of the way from chance to perfect (0.325 for 10 classes,
# 0.625 for 2); without the number of classes, below LOW_ACC_DEFAULT.
LOW_FRACTION, LOW_ACC_DEFAULT = 0.25, 0.30
FLAT_GAIN = 0.02  # a new best accuracy must beat the old one by this to count as progress

KINDS = ("overfitting", "underfitting", "diverging", "healthy", "too_early", "no_validation")


def diagnose(metrics: list[dict], *, num_classes: int | None = None) -> dict:
    """{"overfitting": bool, "since_epoch": int | None, "message": str, "kind": one of KINDS}.

    `since_epoch` is set only with overfitting: the first epoch of the overfitting region.
    """
    rows = [r for r in metrics if r.get("train_loss") is not None]
    broken = next((r for r in rows if not _finite(r["train_loss"]) or
                   (r.get("val_loss") is not None and not _finite(r["val_loss"]))), None)
    if broken is not None:
        return _result("diverging", (
            f"The loss became infinite or NaN at epoch {broken['epoch']}: the learning rate is too high "
            "for this model. Lower it 3–10× or add a few warm-up epochs."))
    if len(rows) < MIN_EPOCHS:
        return _result("too_early", f"Too early to judge: the diagnosis starts after {MIN_EPOCHS} epochs.")
    rising = _diverging_since(rows)
    if rising is not None:
        return _result("diverging", (
            f"Training loss has been rising since epoch {rising}: the learning rate is too high. "
            "Lower it 3–10× or add a few warm-up epochs."))
    val = [r for r in rows if _finite(r.get("val_loss")) and _finite(r.get("val_acc"))]
    if not val:
        return _result("no_validation", (
            "There is no validation split, so overfitting cannot be detected; "
            "give the dataset a validation fraction (e.g. 0.2) to see it."))
    for rule in (_val_loss_rising, _gap_widening):
        found = rule(val)
        if found is not None:
            return _overfitting(*found)
    stuck = _underfitting(rows, val, num_classes)
    if stuck is not None:
        return _result("underfitting", stuck)
    best = min(val, key=lambda r: r["val_loss"])
    return _result("healthy", (
        f"Training looks healthy: validation follows training (best validation loss at epoch {best['epoch']})."))


def _val_loss_rising(val: list[dict]) -> tuple[int, int, str] | None:
    """Val loss above its best by the margin for the last STREAK epochs while train loss fell."""
    best_i = min(range(len(val)), key=lambda i: val[i]["val_loss"])  # first minimum
    best = val[best_i]
    limit = best["val_loss"] + max(VAL_RISE_REL * best["val_loss"], VAL_RISE_ABS)
    tail = val[best_i + 1:]
    if len(tail) < STREAK or not all(r["val_loss"] > limit for r in tail[-STREAK:]):
        return None
    if not val[-1]["train_loss"] < best["train_loss"]:
        return None  # both rising is divergence or a schedule jump, not memorisation
    since = tail[0]["epoch"]
    return since, best["epoch"], f"Validation loss has risen since epoch {since} while training loss keeps falling"


def _gap_widening(val: list[dict]) -> tuple[int, int, str] | None:
    """Train-val accuracy gap above GAP_LARGE for the last STREAK+ epochs, wider now (3-epoch mean)
    than when it crossed GAP_LARGE, and not closing again. A gap that was always large and stays
    put is left alone: heavy augmentation or a hard val split can cause that without memorising."""
    gaps = [r["train_acc"] - r["val_acc"] for r in val if _finite(r.get("train_acc"))]
    if len(gaps) != len(val) or len(gaps) <= STREAK:
        return None
    start = len(gaps)
    while start > 0 and gaps[start - 1] > GAP_LARGE:
        start -= 1
    if len(gaps) - start < STREAK:
        return None
    first = max(0, start - 1)  # include the epoch before it became large, when there is one
    recent = _mean(gaps[-STREAK:])
    if recent - _mean(gaps[first:first + STREAK]) < GAP_GROWTH:
        return None
    if len(gaps) >= 2 * STREAK and recent < _mean(gaps[-2 * STREAK:-STREAK]) - GAP_GROWTH:
        return None  # validation is catching up
    best = max(val, key=lambda r: r["val_acc"])
    since = val[start]["epoch"]
    return since, best["epoch"], (
        f"The train–validation accuracy gap is {gaps[-1]:.0%} and has widened since epoch {since}")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _overfitting(since: int, best_epoch: int, what: str) -> dict:
    return {"overfitting": True, "since_epoch": since, "kind": "overfitting", "message": (
        f"{what}: the model is memorising the training images. Try more augmentation, dropout or weight "
        f"decay, early stopping at epoch {best_epoch} (the best), or more data.")}


def _diverging_since(rows: list[dict]) -> int | None:
    """First epoch of a trailing stretch of STREAK+ epochs with training loss DIVERGE_REL above its best."""
    best, streak_from = math.inf, None
    for r in rows:
        loss = r["train_loss"]
        # The absolute floor: a loss near zero wobbling from 0.002 to 0.05 is noise, not divergence.
        if loss > best + max(best * DIVERGE_REL, DIVERGE_ABS):
            streak_from = streak_from if streak_from is not None else r["epoch"]
        else:
            streak_from = None
        best = min(best, loss)
    if streak_from is None:
        return None
    streak = sum(1 for r in rows if r["epoch"] >= streak_from)
    return streak_from if streak >= STREAK else None


def _underfitting(rows: list[dict], val: list[dict], num_classes: int | None) -> str | None:
    if len(rows) < UNDERFIT_MIN_EPOCHS:
        return None
    train = [r["train_acc"] for r in rows if _finite(r.get("train_acc"))]
    valid = [r["val_acc"] for r in val]
    if len(train) < UNDERFIT_MIN_EPOCHS or len(valid) < STREAK + 1:
        return None
    chance = 1 / num_classes if num_classes and num_classes > 1 else None
    low = chance + LOW_FRACTION * (1 - chance) if chance is not None else LOW_ACC_DEFAULT
    if max(train[-1], valid[-1]) >= low or not (_flat(train) and _flat(valid)):
        return None
    if chance is not None and max(train[-STREAK:]) < chance + FLAT_GAIN:
        # Stuck exactly at chance is more often a broken run than a small model.
        return (f"Both accuracies are stuck at chance ({chance:.0%}): the model is not learning. Check that the "
                "learning rate is not too high (try 3–10× lower) and that the images and labels look right.")
    return (f"Both accuracies are low ({train[-1]:.0%} train, {valid[-1]:.0%} validation) and flat: the model is "
            "underfitting. Train for more epochs, use a bigger model, raise the learning rate or use less "
            "dropout and weight decay.")


def _flat(series: list[float]) -> bool:
    """No new best in the last STREAK epochs that beats the earlier best by FLAT_GAIN."""
    return max(series[-STREAK:]) <= max(series[:-STREAK]) + FLAT_GAIN


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def _result(kind: str, message: str) -> dict:
    return {"overfitting": False, "since_epoch": None, "message": message, "kind": kind}
