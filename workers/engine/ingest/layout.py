"""From entry names to classes and predefined splits, by one of three label sources.

- `folders`: `<class>/<image>` or `{train,val,test}/<class>/<image>`; classes are the folder names.
- `filename`: the class is the file name's leading letters (`cat.0.jpg`, `dog_12.png`), as in
  Kaggle's Dogs vs Cats; the images may sit at the top or under split folders (`train/cat.0.jpg`).
- `csv`: a `labels.csv` beside the images names each one's class (`labelfile`).
- `auto`: the first of csv, folders, filename the archive fits (the upload page's default).

A single wrapping folder (or a chain of them) around the whole dataset is ignored. Classes are
sorted. Class names are NFC-normalised (`class_name`): two spellings of one name, with a combining
accent or a precomposed one, are one class; a name with a bidirectional or other control character
is refused. Files that are not images, or that no source can label, are skipped with a reason, never
dropped silently; images laid out two ways at once are refused in one sentence.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ..errors import IngestError
from .archive import Entry
from .labelfile import CSV_NAME, LabelTable, parse_label_table
from .pack import SPLITS, TEST, TRAIN, VAL

LABEL_SOURCES = ("folders", "filename", "csv")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_NAMES = {"train": TRAIN, "training": TRAIN, "val": VAL, "valid": VAL, "validation": VAL,
               "test": TEST, "testing": TEST}
NOT_IMAGE = "not an image file"
NO_CLASS = "not inside a class folder"
NO_NAME_CLASS = "its file name does not start with a class name"
NOT_LISTED = f"not listed in {CSV_NAME}"
CSV_REFUSED = f"its rows in {CSV_NAME} disagree"
MIN_PER_CLASS = 2
_LEADING_LETTERS = re.compile(r"[^\W\d_]+")  # letters up to the first '.', '_', '-' or digit
# Bidirectional controls (embeddings, overrides, isolates, marks) reorder the text around them on
# screen: a class could show as another's name, or as the reverse of its own.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_CONTROL_CATEGORIES = ("Cc", "Zl", "Zp")  # C0/C1 controls, line and paragraph separators


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
    labels: str = "folders"  # the source that labelled it (`auto` resolved)
    label_problems: list[dict] = field(default_factory=list)  # the label file's rows that were not used


def plan_layout(entries: list[Entry], labels: str = "folders",
                read: Callable[[Entry], bytes] | None = None, *, part: bool = False) -> Layout:
    """Classes and items of `entries` by the label source `labels`; `read` gives an entry's bytes
    (needed for `csv` and `auto`). `part`: the images join a dataset's other images (a new version),
    so a single class, or one image of a class, is fine here."""
    if labels == "auto":
        return _detect(entries, read, part)
    if labels not in LABEL_SOURCES:
        raise IngestError(f"labels must be one of {', '.join(LABEL_SOURCES)} or auto.", field="labels")
    skipped, candidates = _candidates(entries)
    warnings: list[str] = []
    problems: list[dict] = []
    if labels == "csv":
        placed, problems = _by_table(candidates, skipped, _label_file(entries, read))
    elif labels == "folders":
        placed = _by_folder(candidates, skipped, warnings)
    else:
        placed = _by_file_name(candidates, skipped)
    layout = _assemble(placed, skipped, part)
    layout.labels, layout.label_problems, layout.warnings = labels, problems, warnings + layout.warnings
    return layout


def _detect(entries: list[Entry], read, part: bool) -> Layout:
    """The likely source: a label file if there is one, else folders, else file names; when none
    fits, the folders error (the default layout's advice) is what the user reads."""
    if any(e.parts and e.parts[-1].lower() == CSV_NAME for e in entries if not e.skip):
        return plan_layout(entries, "csv", read, part=part)
    try:
        return plan_layout(_fresh(entries), "folders", part=part)
    except IngestError as folders_error:
        try:
            return plan_layout(_fresh(entries), "filename", part=part)
        except IngestError:
            raise folders_error from None


def _fresh(entries: list[Entry]) -> list[Entry]:
    """Copies, so a failed attempt's skip reasons do not stay on the entries of the next."""
    return [Entry(name=e.name, parts=e.parts, size=e.size, ref=e.ref, skip=e.skip) for e in entries]


def _candidates(entries: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    skipped = [e for e in entries if e.skip]
    candidates = []
    for entry in (e for e in entries if not e.skip):
        if _looks_like_image(entry.parts[-1]):
            candidates.append(entry)
        elif entry.parts[-1].lower() != CSV_NAME:
            entry.skip = NOT_IMAGE
            skipped.append(entry)
    if not candidates:
        raise IngestError(_no_images_message(skipped))
    return skipped, candidates


def _wrapper_depth(candidates: list[Entry], *, below: int) -> int:
    """Leading folders shared by every image (a wrapper such as "mydata/"), leaving `below` parts."""
    depth = 0
    while (all(len(e.parts) >= depth + below + 1 for e in candidates)
           and len({e.parts[depth] for e in candidates}) == 1
           and candidates[0].parts[depth].lower() not in SPLIT_NAMES):
        depth += 1
    return depth


Placed = list[tuple[Entry, str, int | None]]


def _by_folder(candidates: list[Entry], skipped: list[Entry], warnings: list[str]) -> Placed:
    depth = _wrapper_depth(candidates, below=2)
    tops = {e.parts[depth].lower() for e in candidates if len(e.parts) > depth + 1}
    split_layout = bool(tops) and tops <= SPLIT_NAMES.keys()
    loose = [e for e in candidates if len(e.parts) == depth + 1]
    if loose and len(loose) < len(candidates):
        raise IngestError(
            f"The archive mixes layouts: {len(candidates) - len(loose)} images are inside folders and "
            f"{len(loose)} lie at the top (such as '{loose[0].parts[-1]}'); put every image in a class "
            "folder, or none of them and take the labels from the file names.")
    placed: Placed = []
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
        raise IngestError("The archive has images but none inside a class folder; lay it out as <class>/<image> "
                          "or train/<class>/<image>, or take the labels from the file names (cat.0.jpg).")
    if not split_layout and tops & SPLIT_NAMES.keys():
        warnings.append("Some top-level folders are named like splits (train/val/test) and others are not, "
                        "so all of them were treated as classes.")
    return placed


def _by_file_name(candidates: list[Entry], skipped: list[Entry]) -> Placed:
    depth = _wrapper_depth(candidates, below=1)
    loose = [e for e in candidates if len(e.parts) == depth + 1]
    foldered = [e for e in candidates if len(e.parts) > depth + 1 and e.parts[depth].lower() not in SPLIT_NAMES]
    if loose and foldered:
        raise IngestError(
            f"The archive mixes layouts: {len(loose)} images lie at the top and {len(foldered)} are inside "
            f"folders (such as '{foldered[0].parts[depth]}/'); with labels from file names put the images at the "
            "top or in train/val/test folders.")
    placed: Placed = []
    for entry in candidates:
        rest = entry.parts[depth:]
        split = SPLIT_NAMES.get(rest[0].lower()) if len(rest) == 2 else None
        name = class_from_file_name(rest[-1])
        if name is None:
            entry.skip = NO_NAME_CLASS
            skipped.append(entry)
        else:
            placed.append((entry, name, split))
    if not placed:
        raise IngestError("No image's file name starts with a class name; name them like cat.0.jpg, "
                          "or lay the archive out as <class>/<image>.")
    return placed


def class_from_file_name(filename: str) -> str | None:
    """`cat.0.jpg` -> `cat`, `Golden_retriever-3.png` -> `Golden`; None when it starts otherwise."""
    # NFC first: a decomposed accent is a combining mark, not a letter, and would end the name.
    match = _LEADING_LETTERS.match(unicodedata.normalize("NFC", filename))
    return match.group(0) if match else None


def _label_file(entries: list[Entry], read) -> tuple[tuple[str, ...], LabelTable]:
    """(the folder holding labels.csv, its parsed rows): the shallowest one, which must be alone."""
    files = [e for e in entries if not e.skip and e.parts[-1].lower() == CSV_NAME]
    if not files:
        raise IngestError(f"The archive has no {CSV_NAME}; add one with a filename,label row per image "
                          "(or one-hot columns), or choose another label source.")
    shallowest = min(len(e.parts) for e in files)
    top = [e for e in files if len(e.parts) == shallowest]
    if len(top) > 1:
        raise IngestError(f"The archive has {len(top)} {CSV_NAME} files side by side; keep one.")
    if read is None:
        raise IngestError(f"The {CSV_NAME} could not be read.")
    return top[0].parts[:-1], parse_label_table(read(top[0]))


def _by_table(candidates: list[Entry], skipped: list[Entry], located) -> tuple[Placed, list[dict]]:
    root, table = located
    inside = [e for e in candidates if e.parts[:len(root)] == root]
    for entry in candidates:
        if entry.parts[:len(root)] != root:
            entry.skip = NOT_LISTED
            skipped.append(entry)
    assignment, problems = table.assign({"/".join(e.parts[len(root):]): e for e in inside})
    placed: Placed = []
    for entry in inside:
        verdict = assignment.get(id(entry))
        if verdict is None:
            entry.skip = NOT_LISTED
            skipped.append(entry)
        elif verdict is LabelTable.REFUSED:
            entry.skip = CSV_REFUSED
            skipped.append(entry)
        else:
            rest = entry.parts[len(root):]
            split = SPLIT_NAMES.get(rest[0].lower()) if len(rest) >= 2 else None
            placed.append((entry, verdict, split))
    if not placed:
        raise IngestError(f"No row of {CSV_NAME} names an image of the archive; its first column must be each "
                          "image's file name (or its path beside the file).")
    return placed, problems


def class_name(raw: str, *, field: str | None = None) -> str:
    """`raw` as a class name: NFC-normalised; IngestError (for `field`) naming a class with a
    bidirectional or other control character, escaped so the character shows."""
    name = unicodedata.normalize("NFC", raw)
    for char in name:
        if char in BIDI_CONTROLS or unicodedata.category(char) in _CONTROL_CATEGORIES:
            kind = "a bidirectional control" if char in BIDI_CONTROLS else "a control character"
            raise IngestError(f"The class name {ascii(name[:100])} contains {kind} (U+{ord(char):04X}), which can "
                              "make it display as another name; rename it without that character.", field=field)
    return name


def merged_classes(names) -> tuple[dict[str, str], list[str]]:
    """({raw name: class name}, a warning per class several raw names were merged into)."""
    mapping = {raw: class_name(raw) for raw in sorted(set(names))}
    spellings: dict[str, list[str]] = {}
    for raw, name in mapping.items():
        spellings.setdefault(name, []).append(raw)
    warnings = [f"The class names {', '.join(ascii(r) for r in raws)} look the same but were written with different "
                f"Unicode characters (composed and decomposed accents); they are one class, {name!r}."
                for name, raws in spellings.items() if len(raws) > 1]
    return mapping, warnings


def _assemble(placed: Placed, skipped: list[Entry], part: bool) -> Layout:
    mapping, merged = merged_classes(name for _, name, _ in placed)
    placed = [(entry, mapping[name], split) for entry, name, split in placed]
    classes = sorted({name for _, name, _ in placed})
    if not part:  # a part is counted with the images it joins (versions)
        _enough(classes, Counter(name for _, name, _ in placed))
    index = {name: i for i, name in enumerate(classes)}
    items = [Item(entry=e, label=index[name], split=split) for e, name, split in placed]
    predefined = {split for _, _, split in placed if split is not None}
    if predefined and TRAIN not in predefined:
        present = ", ".join(SPLITS[s] for s in sorted(predefined))
        raise IngestError(f"The archive has {present} folders but no train folder; "
                          "add a train folder, or none and let the split be drawn.")
    return Layout(classes=classes, items=items, skipped=skipped, predefined=predefined, warnings=merged)


def _enough(classes: list[str], per_class: Counter) -> None:
    if len(classes) < 2:
        raise IngestError(f"The archive has a single class ('{classes[0]}'); a classifier needs at least two.")
    for name in classes:
        if per_class[name] < MIN_PER_CLASS:
            raise IngestError(f"Class '{name}' has only {per_class[name]} image; "
                              f"every class needs at least {MIN_PER_CLASS}.")


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
