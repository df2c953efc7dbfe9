"""Stratified, seeded train/val/test split, drawn from the listing before any image is decoded.

Drawing it first lets the decode workers gather the train split's statistics as they go (no
second pass over the pixels), and makes the split depend only on the entries and the seed.
Copies of one image that land in train and in val/test are caught afterwards as leaks, and the
held-out copy is removed (see `health.find_leaks`).

Splits are drawn per class from the images the archive does not already place:
- no predefined splits: val and test are drawn from every class;
- only train/: val and test are drawn from train;
- train/ and test/ but no val/: val is drawn from train (test is kept as given);
- train/ and val/ (with or without test/): everything is kept as given.
`groups` (optional) makes images move together: all members of a group get the same split.
"""
from __future__ import annotations

import math

import numpy as np

from .pack import TEST, TRAIN, VAL


def draw_splits(*, labels: np.ndarray, given: np.ndarray, predefined: set[int], val_fraction: float,
                test_fraction: float, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Split code per image. `given` holds the archive's split (-1 where it has none)."""
    labels, given = np.asarray(labels), np.asarray(given)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    splits = np.where(given >= 0, given, TRAIN).astype(np.int8)
    if not predefined:
        pool, fractions = np.ones(len(labels), dtype=bool), (val_fraction, test_fraction)
    elif VAL in predefined:
        return splits
    elif TEST in predefined:
        pool, fractions = given == TRAIN, (val_fraction, 0.0)
    else:
        pool, fractions = given == TRAIN, (val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):  # sorted: the same seed draws the same split
        members = np.flatnonzero(pool & (labels == label))
        _split_class(members, groups, fractions, rng, splits)
    return splits


def _split_class(members: np.ndarray, groups: np.ndarray, fractions: tuple[float, float],
                 rng: np.random.Generator, out: np.ndarray) -> None:
    n = len(members)
    n_val, n_test = (math.floor(n * f + 0.5) for f in fractions)
    while n_val + n_test > n - 1 and n_val + n_test > 0:  # keep at least one training image
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    uniq, first, inverse = np.unique(groups[members], return_index=True, return_inverse=True)
    # Groups in archive order, shuffled by the seed; then test, val and train are filled in turn.
    order = np.argsort(first)[rng.permutation(len(uniq))]
    sizes = np.bincount(inverse, minlength=len(uniq))[order]
    before = np.cumsum(sizes) - sizes
    is_test = before < n_test
    is_val = ~is_test & (before - sizes[is_test].sum() < n_val)
    target = np.full(len(uniq), TRAIN, dtype=np.int8)
    target[order[is_test]] = TEST
    target[order[is_val]] = VAL
    out[members] = target[inverse]
