"""`labels.csv`: each image's class from a table, as `filename,label` or one-hot columns.

    filename,label          filename,cat,dog
    cat.0.jpg,cat           cat.0.jpg,1,0
    dog.7.jpg,dog           dog.7.jpg,0,1

The header row is optional for `filename,label` (a first row naming an image is data). A row is a
file name (its path beside the CSV, or its bare name when that is unique in the archive) and one
class. Nothing is guessed: a row naming no image, a one-hot row with no 1 or several, a value that is
not 0 or 1, an empty label and an image listed twice are reported (`problems`, shown in the health
report); an image whose rows disagree is left out.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field

from ..errors import IngestError

CSV_NAME = "labels.csv"
MAX_COLUMNS = 10_000  # one-hot classes; a wider row is not a label file
NO_FILE = "names no image in the archive"
NO_LABEL = "has no label"
SEVERAL = "has more than one label"
NOT_BINARY = "has a value that is not 0 or 1"
AGAIN = "lists an image again"
DISAGREE = "gives an image a second, different label"
AMBIGUOUS = "names a file several images share; give its path"


@dataclass
class LabelTable:
    rows: list[tuple[int, str, str | None, str]]  # (line, file name, class or None, why not)
    one_hot: bool = False
    header_line: int | None = None  # a first row that may be a header (filename,label)
    problems: list[dict] = field(default_factory=list)

    REFUSED = object()  # the verdict for an image whose rows disagree

    def assign(self, images: dict) -> tuple[dict[int, object], list[dict]]:
        """For `images` (path beside the CSV -> entry): {id(entry): class or REFUSED}, and the rows'
        problems, in file order."""
        by_path = {_key(path): entry for path, entry in images.items()}
        by_name: dict[str, list] = defaultdict(list)
        for path, entry in images.items():
            bare = _key(path).rsplit("/", 1)[-1]
            by_name[bare].append(entry)
            if "." in bare:  # "cat.0" finds cat.0.jpg, as tables that list ids often do
                by_name[bare.rsplit(".", 1)[0]].append(entry)
        problems = list(self.problems)
        verdict: dict[int, object] = {}
        first_row: dict[int, tuple[int, str | None]] = {}
        for line, name, label, why in self.rows:
            key = _key(name)
            entry = by_path.get(key)
            if entry is None:
                matches = by_name.get(key, [])
                if len(matches) > 1:
                    problems.append(_problem(line, name, AMBIGUOUS))
                    continue
                entry = matches[0] if matches else None
            if entry is None:
                if line != self.header_line:  # a first row naming no image is the header
                    problems.append(_problem(line, name, NO_FILE))
                continue
            if label is None:
                problems.append(_problem(line, name, why))
                verdict[id(entry)] = self.REFUSED
                continue
            if id(entry) in first_row:
                seen_line, seen_label = first_row[id(entry)]
                if seen_label == label:
                    problems.append(_problem(line, name, f"{AGAIN} (first on line {seen_line})"))
                else:
                    problems.append(_problem(line, name, f"{DISAGREE} ('{label}'; line {seen_line} says "
                                                         f"'{seen_label}')"))
                    verdict[id(entry)] = self.REFUSED
                continue
            first_row[id(entry)] = (line, label)
            verdict.setdefault(id(entry), label)
        return verdict, problems


def parse_label_table(data: bytes) -> LabelTable:
    """Parse the bytes of a label file; raises IngestError for one that is not a table at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IngestError(f"{CSV_NAME} is not UTF-8 text; save it as UTF-8 CSV.") from None
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise IngestError(f"{CSV_NAME} is not a readable CSV file ({exc}).") from None
    numbered = [(i + 1, [cell.strip() for cell in row]) for i, row in enumerate(lines) if any(c.strip() for c in row)]
    if not numbered:
        raise IngestError(f"{CSV_NAME} is empty; give it a filename,label row per image.")
    width = len(numbered[0][1])
    if width < 2 or width > MAX_COLUMNS:
        raise IngestError(f"{CSV_NAME} must have a file name column and a label column (or one column per "
                          f"class, one-hot); its first row has {width} columns.")
    if width == 2:
        return _two_columns(numbered)
    return _one_hot(numbered)


def _two_columns(numbered: list[tuple[int, list[str]]]) -> LabelTable:
    rows = []
    for line, cells in numbered:
        name, label = (cells + ["", ""])[:2]
        rows.append((line, name, label or None, NO_LABEL))
    return LabelTable(rows=rows, header_line=numbered[0][0])


def _one_hot(numbered: list[tuple[int, list[str]]]) -> LabelTable:
    classes = numbered[0][1][1:]
    if any(not c for c in classes) or len(set(classes)) < len(classes):
        raise IngestError(f"{CSV_NAME}'s header must name every class column once (filename,cat,dog,...).")
    rows = []
    for line, cells in numbered[1:]:
        name, values = cells[0], (cells[1:] + [""] * len(classes))[:len(classes)]
        ones = [c for c, v in zip(classes, values) if _number(v) == 1]
        if any(_number(v) not in (0, 1) for v in values):
            rows.append((line, name, None, NOT_BINARY))
        elif len(ones) == 1:
            rows.append((line, name, ones[0], ""))
        else:
            rows.append((line, name, None, NO_LABEL if not ones else f"{SEVERAL} ({', '.join(ones)})"))
    return LabelTable(rows=rows, one_hot=True)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _key(name: str) -> str:
    key = name.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key


def _problem(line: int, name: str, reason: str) -> dict:
    return {"line": line, "name": name[:300], "reason": reason}
