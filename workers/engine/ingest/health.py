"""Dataset health, computed from the facts the decode workers return (no second pass over pixels).

- exact duplicates: equal packed pixels (a hash of each packed array), within and across classes;
  across classes they are conflicting labels;
- leakage: the same image in train and in val/test; the held-out copy is removed from the pack;
- near-duplicates across splits (`neardup`): 64-bit dHash within a few bits, confirmed on the
  thumbnails (re-encoded, resized or lightly edited copies of one picture);
- class imbalance, small classes, mixed sizes and colour modes, and every skipped entry.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .pack import SPLITS, TRAIN

MAX_LISTED = 1000  # entries listed per list in the report; the counts stay exact
MAX_GROUPS = 100
SMALL_CLASS = 10
IMBALANCE_WARNING = 3.0


@dataclass
class Facts:
    """One row per decoded image, in archive order."""
    names: list[str]
    labels: np.ndarray  # int64
    pixels: list[bytes]  # hash of the packed array
    digests: list[bytes]  # hash of the file's bytes
    dhash: np.ndarray  # uint64
    sizes: np.ndarray  # N x 2 int32 (width, height), oriented
    modes: list[str]
    formats: list[str]


def group_ids(keys: list[bytes]) -> np.ndarray:
    """Equal keys get equal ids (numbered in order of first appearance)."""
    if keys and len({len(k) for k in keys[:1000]}) == 1 and all(len(k) == len(keys[0]) for k in keys):
        return group_ids_of(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), -1))
    seen: dict[bytes, int] = {}
    return np.fromiter((seen.setdefault(k, len(seen)) for k in keys), dtype=np.int64, count=len(keys))


def group_ids_of(rows: np.ndarray) -> np.ndarray:
    """`group_ids` of the rows of an N x K uint8 array, without a Python loop."""
    if not len(rows) or rows.shape[1] == 0:
        return np.zeros(len(rows), dtype=np.int64)
    keys = np.ascontiguousarray(rows).view(f"V{rows.shape[1]}")[:, 0]
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.empty(len(first), dtype=np.int64)
    order[np.argsort(first, kind="stable")] = np.arange(len(first))
    return order[inverse.reshape(-1)]


def duplicate_groups(ids: np.ndarray) -> list[np.ndarray]:
    """Rows sharing an id, for every id held by more than one row (rows ascending in each group)."""
    repeated = np.flatnonzero(np.bincount(ids) > 1) if len(ids) else np.array([], dtype=np.int64)
    if not len(repeated):
        return []
    rows = np.flatnonzero(np.isin(ids, repeated))
    rows = rows[np.argsort(ids[rows], kind="stable")]
    return np.split(rows, np.flatnonzero(np.diff(ids[rows])) + 1)


def find_leaks(ids: np.ndarray, splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(leaked mask, train row of each image's group or -1): held-out images whose pixels are in train."""
    n_groups = int(ids.max()) + 1 if len(ids) else 0
    train_rows = np.flatnonzero(splits == TRAIN)
    first_train = np.full(n_groups, -1, dtype=np.int64)
    first_train[ids[train_rows[::-1]]] = train_rows[::-1]  # the last write wins: the first train row
    counterpart = first_train[ids]
    return (splits != TRAIN) & (counterpart >= 0), counterpart


def imbalance(counts: list[int]) -> float:
    return round(max(counts) / max(min(counts), 1), 2) if counts else 1.0


def size_summary(sizes: np.ndarray) -> dict:
    """Original sizes for a chart: how many images of each (width, height), most common first."""
    if not len(sizes):
        return {"count": 0, "distinct": 0, "sizes": []}
    # One int64 per (width, height): a 1-D unique is an order of magnitude faster than one over rows.
    codes, counts = np.unique(sizes[:, 0].astype(np.int64) << 32 | sizes[:, 1].astype(np.int64), return_counts=True)
    uniq = np.stack([codes >> 32, codes & 0xFFFFFFFF], axis=1)
    order = np.argsort(-counts, kind="stable")[:200]
    stats = {axis: {"min": int(sizes[:, i].min()), "median": int(np.median(sizes[:, i])),
                    "max": int(sizes[:, i].max())} for i, axis in enumerate(("width", "height"))}
    return {"count": int(len(sizes)), "distinct": int(len(uniq)), **stats,
            "sizes": [{"width": int(uniq[i, 0]), "height": int(uniq[i, 1]), "count": int(counts[i])}
                      for i in order]}


def report(*, classes: list[str], facts: Facts, ids: np.ndarray, splits: np.ndarray, leaked: np.ndarray,
           counterpart: np.ndarray, near: list, checked: float, totals: np.ndarray,
           corrupt: list[dict], ignored: list[dict]) -> dict:
    """The health dict (the API's keys corrupt, duplicates, leaks, imbalance, warnings and details)."""
    names = facts.names
    label = [classes[int(c)] for c in facts.labels]

    def image(row: int) -> dict:
        return {"name": names[row], "class": label[row], "split": SPLITS[int(splits[row])]}

    groups = duplicate_groups(ids)
    conflict = [len(set(facts.labels[g].tolist())) > 1 for g in groups]
    shown = [g for g, c in zip(groups, conflict) if c] + [g for g, c in zip(groups, conflict) if not c]
    return {
        "corrupt": corrupt[:MAX_LISTED], "corrupt_count": len(corrupt),
        "ignored": ignored[:MAX_LISTED], "ignored_count": len(ignored),
        # Decoder messages end in a detail in parentheses; the count groups by the sentence.
        "skipped_by_reason": dict(Counter(r["reason"].split(" (")[0] for r in corrupt).most_common()),
        "duplicates": int(sum(len(g) - 1 for g in groups)),
        "conflicts": int(sum(conflict)),
        "duplicate_groups": [{"count": len(g), "conflict": len(set(facts.labels[g].tolist())) > 1,
                              "images": [image(r) for r in g[:10]]} for g in shown[:MAX_GROUPS]],
        "identical_files": int(sum(len(g) - 1 for g in duplicate_groups(group_ids(facts.digests)))),
        "leaks": int(leaked.sum()),
        "leaked": [{**image(r), "train_name": names[counterpart[r]], "train_class": label[counterpart[r]]}
                   for r in np.flatnonzero(leaked)[:MAX_LISTED]],
        "near_duplicates": len(near),
        "near_duplicate_pairs": [{**image(h), "train_name": names[t], "train_class": label[t], "distance": d,
                                  "difference": diff} for h, t, d, diff in near[:MAX_LISTED]],
        "near_duplicates_checked": round(checked, 4),
        "imbalance": imbalance(totals.tolist()),
        "small_classes": [{"name": c, "count": int(n)} for c, n in zip(classes, totals) if n < SMALL_CLASS],
        "sizes": size_summary(facts.sizes),
        "modes": dict(Counter(facts.modes).most_common()),
        "formats": dict(Counter(facts.formats).most_common()),
    }


def warnings_for(*, health: dict, classes: list[str], totals: list[int], trained: list[int], image_size: int,
                 channels: int, resize_mode: str) -> list[str]:
    """The report's sentences, most actionable first."""
    out = []
    if health["corrupt_count"]:
        n = health["corrupt_count"]
        top = "; ".join(f"{reason} ({count})" for reason, count in list(health["skipped_by_reason"].items())[:3])
        out.append(f"{_n(n, 'file')} of the upload {_were(n)} left out ({top}); see the list of unreadable files.")
    if health.get("label_problems_count"):
        n = health["label_problems_count"]
        out.append(f"{_n(n, 'row')} of labels.csv {_were(n)} not used (no such image, no label, several labels, "
                   "or an image listed twice); see the list, nothing was guessed.")
    if health["ignored_count"]:
        n = health["ignored_count"]
        out.append(f"{_n(n, 'hidden or macOS metadata file')} {_were(n)} ignored.")
    if health["conflicts"]:
        c = health["conflicts"]
        out.append(f"{_n(c, 'picture')} {'appears' if c == 1 else 'appear'} in more than one class "
                   "(identical pixels, conflicting labels); check their labels.")
    if health["leaks"]:
        out.append(f"{_n(health['leaks'], 'val/test image')} identical to a train image "
                   f"{_were(health['leaks'])} removed from the held-out split so they cannot inflate the score.")
    if health["duplicates"]:
        copies = "is an exact copy" if health["duplicates"] == 1 else "are exact copies"
        out.append(f"{_n(health['duplicates'], 'image')} {copies} "
                   "of another image in the dataset.")
    if health["near_duplicates"]:
        out.append(f"{_n(health['near_duplicates'], 'val/test image')} "
                   f"{'looks' if health['near_duplicates'] == 1 else 'look'} almost identical to a train image; "
                   "the held-out score may be optimistic.")
    for name, count in zip(classes, trained):
        if count == 0:
            out.append(f"Class '{name}' has no images in the train split, so the model cannot learn it.")
    for name, total in zip(classes, totals):
        if total < SMALL_CLASS:
            out.append(f"Class '{name}' has only {total} images; {SMALL_CLASS} or more per class are recommended.")
    if health["imbalance"] >= IMBALANCE_WARNING:
        big, small = classes[int(np.argmax(totals))], classes[int(np.argmin(totals))]
        out.append(f"Classes are imbalanced: '{big}' has {health['imbalance']:g} times as many images as "
                   f"'{small}'; consider more data for the small classes or class weights.")
    sizes = health["sizes"]
    if sizes["distinct"] > 1:
        out.append(f"Images come in {sizes['distinct']} different sizes (width {sizes['width']['min']}-"
                   f"{sizes['width']['max']}, height {sizes['height']['min']}-{sizes['height']['max']}); "
                   f"all were resized to {image_size}x{image_size} with '{resize_mode}'.")
    if len(health["modes"]) > 1:
        modes = ", ".join(f"{m} ({n})" for m, n in health["modes"].items())
        out.append(f"Images mix colour modes ({modes}); all were converted to "
                   f"{'grayscale' if channels == 1 else 'RGB'}.")
    return out


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _were(count: int) -> str:
    return "was" if count == 1 else "were"
