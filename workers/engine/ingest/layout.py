"""From entry names to classes and predefined splits: `<class>/<image>` or `{train,val,test}/<class>/<image>`.

A single wrapping folder (or a chain of them) around the whole dataset is ignored. Classes are
the sorted folder names. Files that are not images, or not inside a class folder, are skipped
with a reason, never dropped silently.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..errors import IngestError
from .archive import Entry
from .pack import SPLITS, TEST, TRAIN, VAL

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_NAMES = {"train": TRAIN, "training": TRAIN, "val": VAL, "valid": VAL, "validation": VAL,
               "test": TEST, "testing": TEST}
NOT_IMAGE = "not an image file"
NO_CLASS = "not inside a class folder"
MIN_PER_CLASS = 2


@dataclass
class Item:
    entry: Entry
    label: int
    split: int | None  # the archive's own split, or None where the split is drawn at random


@dataclass
class Layout:
    classes: list[str]
    items: list[Item]
    skipped: list[Entry]
    predefined: set[int] = field(default_factory=set)  # splits the archive brings, empty if none
    warnings: list[str] = field(default_factory=list)


def plan_layout(entries: list[Entry]) -> Layout:
    skipped = [e for e in entries if e.skip]
    candidates = []
    for entry in (e for e in entries if not e.skip):
        if _looks_like_image(entry.parts[-1]):
            candidates.append(entry)
        else:
            entry.skip = NOT_IMAGE
            skipped.append(entry)
    if not candidates:
        raise IngestError(_no_images_message(skipped))

    depth = 0  # leading folders shared by every image: a wrapper such as "mydata/"
    while (all(len(e.parts) >= depth + 3 for e in candidates)
           and len({e.parts[depth] for e in candidates}) == 1
           and candidates[0].parts[depth].lower() not in SPLIT_NAMES):
        depth += 1
    tops = {e.parts[depth].lower() for e in candidates}
    split_layout = tops <= SPLIT_NAMES.keys()
    warnings = []
    if not split_layout and tops & SPLIT_NAMES.keys() and any(len(e.parts) > depth + 2 for e in candidates):
        warnings.append("Some top-level folders are named like splits (train/val/test) and others are not, "
                        "so all of them were treated as classes.")

    placed: list[tuple[Entry, str, int | None]] = []
    for entry in candidates:
        rest = entry.parts[depth:]
        if split_layout and len(rest) >= 3:
            placed.append((entry, rest[1], SPLIT_NAMES[rest[0].lower()]))
        elif not split_layout and len(rest) >= 2:
            placed.append((entry, rest[0], None))
        else:
            entry.skip = NO_CLASS
            skipped.append(entry)
    if not placed:
        raise IngestError("The archive has images but none inside a class folder; "
                          "lay it out as <class>/<image> or train/<class>/<image>.")

    classes = sorted({name for _, name, _ in placed})
    if len(classes) < 2:
        raise IngestError(f"The archive has a single class ('{classes[0]}'); "
                          "a classifier needs at least two class folders.")
    per_class = Counter(name for _, name, _ in placed)
    for name in classes:
        if per_class[name] < MIN_PER_CLASS:
            raise IngestError(f"Class '{name}' has only {per_class[name]} image; "
                              f"every class needs at least {MIN_PER_CLASS}.")
    index = {name: i for i, name in enumerate(classes)}
    items = [Item(entry=e, label=index[name], split=split) for e, name, split in placed]
    predefined = {split for _, _, split in placed if split is not None}
    if split_layout and TRAIN not in predefined:
        present = ", ".join(SPLITS[s] for s in sorted(predefined))
        raise IngestError(f"The archive has {present} folders but no train folder; "
                          "add train/<class>/<image> or use <class>/<image> and let the split be drawn.")
    return Layout(classes=classes, items=items, skipped=skipped, predefined=predefined, warnings=warnings)


def _looks_like_image(filename: str) -> bool:
    dot = filename.rfind(".")
    # Files without an extension are tried (their content decides); known other types are not.
    return dot <= 0 or filename[dot:].lower() in IMAGE_EXTENSIONS


def _no_images_message(skipped: list[Entry]) -> str:
    if not skipped:
        return "The archive has no images; add a folder per class with JPEG, PNG, BMP, GIF, WebP or TIFF files."
    reason, _ = Counter(e.skip for e in skipped).most_common(1)[0]
    return (f"The archive has no usable images: all {len(skipped)} of its files were skipped "
            f"(most often: {reason}).")
