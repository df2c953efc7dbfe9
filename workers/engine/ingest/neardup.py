"""Near-duplicates across splits: held-out images that look almost identical to a train image.

A 64-bit dHash (`imaging.dhashes`, computed by the decode workers) finds candidates within
NEAR_DISTANCE bits; the thumbnails confirm them (mean difference at most NEAR_DIFFERENCE), which
drops look-alikes that are different pictures, common among tiny images such as 8x8 digits.

Candidates come from multi-index hashing: split the 64 bits into NEAR_DISTANCE + 1 bands; two
hashes within that distance agree exactly on at least one band (pigeonhole), so sorting each
band's keys finds every candidate in O(n log n) instead of comparing all pairs. When the keys
are too uniform for that to pay (flat images hash alike), all pairs are compared in blocks, and
beyond NEAR_PAIR_BUDGET comparisons a seeded sample of the held-out images is checked (reported
as `near_duplicates_checked`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .pack import TRAIN

NEAR_DISTANCE = 4  # of 64 bits; recompressed or resized copies of a photo usually differ by 0-3
NEAR_DIFFERENCE = 0.04  # mean thumbnail difference (of full scale) that still looks the same; JPEG q75 ~0.02
MAX_CANDIDATES = 8  # train look-alikes checked per held-out image, nearest first
COMPARE_SIDE = 16  # thumbnails are compared box-reduced to about this size
NEAR_PAIR_BUDGET = 200_000_000  # all-pairs hash comparisons (about a second); beyond it, a sample


def near_duplicates(dhash: np.ndarray, splits: np.ndarray, keep: np.ndarray, *,
                    thumbs: Callable[[np.ndarray], np.ndarray], seed: int = 0, max_distance: int = NEAR_DISTANCE,
                    max_difference: float = NEAR_DIFFERENCE, budget: int = NEAR_PAIR_BUDGET) -> tuple[list, float]:
    """[(held row, train row, bits, difference)], one per near-duplicated held-out image in row
    order, and the fraction of held-out images checked. `thumbs(rows)` gives rows' thumbnails."""
    train = np.flatnonzero(keep & (splits == TRAIN))
    held = np.flatnonzero(keep & (splits != TRAIN))
    if not len(train) or not len(held):
        return [], 1.0
    train_hashes, train_first = np.unique(dhash[train], return_index=True)
    checked = 1.0
    # A band candidate costs some twenty times an outright comparison (random gathers vs a
    # streaming XOR); photos give a few per image, flat images far too many.
    found = _band_pairs(dhash[held], train_hashes, max_distance, limit=len(held) * len(train_hashes) // 32)
    if found is None:
        if len(held) * len(train_hashes) > budget:  # too slow to compare all: sample evenly
            take = max(1, budget // len(train_hashes))
            checked = take / len(held)
            held = np.sort(np.random.default_rng(seed).choice(held, size=take, replace=False))
        found = _all_pairs(dhash[held], train_hashes, max_distance)
    h, t, bits = _nearest_first(*found)
    if not len(h):
        return [], checked
    mine, theirs = held[h], train[train_first[t]]
    difference = _differences(mine, theirs, thumbs)
    order = np.lexsort((difference, mine))  # per held-out row, the closest picture first
    best = order[np.r_[True, mine[order][1:] != mine[order][:-1]]]
    best = best[difference[best] <= max_difference]
    return [(int(mine[i]), int(theirs[i]), int(bits[i]), round(float(difference[i]), 4)) for i in best], checked


def _band_pairs(held: np.ndarray, train: np.ndarray, max_distance: int, *, limit: int):
    """(held index, train index, bits) of every pair within max_distance, or None when the band
    keys collide so much that more than `limit` candidates would have to be checked (counted
    first, cheaply, so a hopeless case costs only the sorts)."""
    bands = max_distance + 1
    widths = [64 // bands + (1 if i < 64 % bands else 0) for i in range(bands)]
    found, shift = [], 0
    for width in widths:
        mask = np.uint64((1 << width) - 1)
        train_keys = (train >> np.uint64(shift)) & mask
        order = np.argsort(train_keys, kind="stable")
        sorted_keys = train_keys[order]
        held_keys = (held >> np.uint64(shift)) & mask
        lo = np.searchsorted(sorted_keys, held_keys, "left")
        found.append((order, lo, np.searchsorted(sorted_keys, held_keys, "right") - lo))
        shift += width
    if sum(int(counts.sum()) for _, _, counts in found) > limit:
        return None
    h_parts, t_parts = [], []
    for order, lo, counts in found:
        before = np.cumsum(counts) - counts
        position = np.arange(int(counts.sum())) - np.repeat(before, counts) + np.repeat(lo, counts)
        h_parts.append(np.repeat(np.arange(len(held)), counts))
        t_parts.append(order[position])
    h, t = np.concatenate(h_parts), np.concatenate(t_parts)
    bits = np.bitwise_count(held[h] ^ train[t])
    near = bits <= max_distance
    h, t, bits = h[near], t[near], bits[near]
    _, first = np.unique(h * len(train) + t, return_index=True)  # a pair may match in several bands
    return h[first], t[first], bits[first]


def _all_pairs(held: np.ndarray, train: np.ndarray, max_distance: int):
    block = max(1, 4_000_000 // len(train))
    h_parts, t_parts, d_parts = [], [], []
    for start in range(0, len(held), block):
        distance = np.bitwise_count(held[start:start + block, None] ^ train[None, :])
        h, t = np.nonzero(distance <= max_distance)
        h_parts.append(h + start)
        t_parts.append(t)
        d_parts.append(distance[h, t])
    return np.concatenate(h_parts), np.concatenate(t_parts), np.concatenate(d_parts)


def _nearest_first(h: np.ndarray, t: np.ndarray, bits: np.ndarray):
    """Per held-out image, its MAX_CANDIDATES nearest candidates (by bits)."""
    order = np.lexsort((bits, h))
    h, t, bits = h[order], t[order], bits[order]
    rank = np.arange(len(h)) - np.searchsorted(h, h)  # position within its image's candidates
    near = rank < MAX_CANDIDATES
    return h[near], t[near], bits[near]


def _differences(mine: np.ndarray, theirs: np.ndarray, thumbs) -> np.ndarray:
    """Mean absolute difference (0..1) of the pairs' thumbnails, box-reduced to ~COMPARE_SIDE."""
    involved = np.unique(np.concatenate([mine, theirs]))
    pictures = _small(thumbs(involved))  # one gather for every pair
    a, b = np.searchsorted(involved, mine), np.searchsorted(involved, theirs)
    return np.concatenate([np.abs(pictures[a[i:i + 4096]] - pictures[b[i:i + 4096]]).mean(axis=(1, 2, 3))
                           for i in range(0, len(a), 4096)]) / 255.0


def _small(images: np.ndarray, side: int = COMPARE_SIDE) -> np.ndarray:
    """N x H x W x C uint8 -> int16 box-averaged by an integer factor to about side x side: what
    the eye compares, at a sixteenth of the work for 64-pixel thumbnails. (Summing f*f strided
    views beats numpy's reductions over small inner axes several times.)"""
    n, h, w, c = images.shape
    f = max(1, round(min(h, w) / side))
    if f < 2:
        return images.astype(np.int16)
    total = np.zeros((n, h // f, w // f, c), dtype=np.uint16)  # f*f*255 fits for any f < 16
    for i in range(f):
        for j in range(f):
            total += images[:, i:h // f * f:f, j:w // f * f:f]
    return (total // (f * f)).astype(np.int16)
