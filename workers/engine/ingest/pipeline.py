"""Ingest: an uploaded archive or a folder of labelled images -> a pack and a health report.

The one packing path shared by the Celery ingest task and the engine CLI. Django-free: it takes
paths and options and reports progress through a callback.

    report = build_pack("upload.zip", "packs/42", PackOptions(), on_progress=print)

Stages: list the entries within the limits (`archive`, `safety`), find classes and predefined
splits (`layout`), draw the split (`splitting`), decode on every core straight into the pack
while gathering hashes and the train split's sums (`decoding`, `ingest_pool`), remove leaked
copies and write the health report (`health`), then the labels, splits, statistics and extras,
and move the pack into place (`packfile`, `packstats`). On any failure nothing is left on disk:
neither `out_dir` nor its `.partial` sibling.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..diskspace import disk_full
from ..errors import IngestError, PackError
from . import health as hc
from .archive import HIDDEN, MACOSX, Limits, open_source, sniff_archive
from .decode import Outcome, decode_items
from .imaging import RESIZE_MODES
from .layout import LABEL_SOURCES, Layout, plan_layout
from .neardup import near_duplicates
from .pack import SPLITS, TRAIN
from .pool import worker_pool
from .splitting import draw_splits

__all__ = ["PackOptions", "PackReport", "Limits", "IngestError", "build_pack", "sniff_archive"]

DISK_FULL_SENTENCE = ("The disk is full: the dataset could not be written; free some space on the data disk, "
                      "then upload the archive again.")

COLORS = ("auto", "grayscale", "rgb")
INLINE_BELOW = 200  # with processes=None, fewer images decode in-process: starting a pool costs 0.05-0.3 s
PROGRESS_INTERVAL = 0.25  # seconds between progress callbacks


@dataclass
class PackOptions:
    val_fraction: float = 0.2
    test_fraction: float = 0.1
    image_size: int | None = None  # None: the images' own size when all share one <= 256, else 224
    resize_mode: str = "squash"
    color: str = "auto"
    seed: int = 0
    labels: str = "folders"  # folders, filename, csv or auto (see layout)
    # Enlarging tiny images far beyond their size was confirmed (`estimate.upscale_sentence`): the site
    # checks it before the ingest; the pipeline itself packs whatever it is given.
    allow_upscale: bool = False

    def validate(self) -> None:
        """Raise IngestError naming the field for a value no dataset can be built with."""
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise IngestError(f"{name} must be a number from 0 up to (not including) 1.", field=name)
        if self.val_fraction + self.test_fraction >= 1:
            raise IngestError("val_fraction and test_fraction together must leave images for training.",
                              field="val_fraction")
        if self.image_size is not None and (not isinstance(self.image_size, int) or not 4 <= self.image_size <= 1024):
            raise IngestError("image_size must be a whole number from 4 to 1024, or empty for automatic.",
                              field="image_size")
        if self.resize_mode not in RESIZE_MODES:
            raise IngestError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}.", field="resize_mode")
        if self.color not in COLORS:
            raise IngestError(f"color must be one of {', '.join(COLORS)}.", field="color")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise IngestError("seed must be a whole number of 0 or more.", field="seed")
        if self.labels not in (*LABEL_SOURCES, "auto"):
            raise IngestError(f"labels must be one of {', '.join(LABEL_SOURCES)} or auto.", field="labels")


@dataclass
class PackReport:
    pack_path: Path
    classes: list[str]
    counts: list[dict[str, Any]]  # [{"name", "train", "val", "test"}] in class order
    num_images: int
    image_size: int
    channels: int
    health: dict[str, Any]
    original_sizes: dict[str, Any]  # see health.size_summary
    mean: list[float] = field(default_factory=list)  # per channel, train split, in [0, 1]
    std: list[float] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # the options with image_size resolved
    seconds: float = 0.0
    content_hash: str = ""  # see pack.content_hash
    decoded: int = 0  # images decoded (a version decodes only the ones it adds)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pack_path"] = str(self.pack_path)
        return data


def build_pack(source: str | Path, out_dir: str | Path, options: PackOptions, *, limits: Limits | None = None,
               on_progress: Callable[[float], None] | None = None, processes: int | None = None,
               part: bool = False) -> PackReport:
    """Pack `source` (zip, tar, tar.gz or folder) into `out_dir`, which must not exist yet.

    `processes`: decode workers (None: every core, in-process for small sets; 1: in-process).
    `part`: the images will join other images in a new version (`versions`): classes are counted there.
    Raises IngestError with one sentence for an upload that cannot become a dataset.
    """
    started = time.perf_counter()
    options.validate()
    limits = limits or Limits()
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise PackError(f"{out_dir} already exists; a pack never changes once written")
    progress = _Progress(on_progress)
    outcome: Outcome | None = None
    try:
        with open_source(source, limits=limits) as src:
            layout = plan_layout(src.entries, options.labels, read=lambda entry: _read_one(src, entry), part=part)
            layout.warnings.extend(src.warnings)
            progress(0.02)
            splits = draw_splits(
                labels=np.array([item.label for item in layout.items], dtype=np.int64),
                given=np.array([-1 if item.split is None else item.split for item in layout.items], dtype=np.int8),
                predefined=layout.predefined, val_fraction=options.val_fraction,
                test_fraction=options.test_fraction, seed=options.seed)
            workers = _workers(processes, len(layout.items))
            with worker_pool(workers) as executor:
                outcome = decode_items(
                    source=src, items=layout.items, train=splits == TRAIN, out_dir=out_dir,
                    image_size=options.image_size,
                    color=options.color, resize_mode=options.resize_mode, executor=executor,
                    workers=workers, on_fraction=lambda f: progress(0.02 + 0.88 * f))
        report = _assemble(layout, outcome, splits, options, progress, part=part)
    except BaseException as exc:
        if outcome is not None and outcome.writer is not None:
            outcome.writer.abort()
        if isinstance(exc, BrokenProcessPool):  # the pool fails every task at once: no hang
            raise IngestError("A decoding process died (out of memory, or a file that crashes the image "
                              "decoder); remove unusual files or upload a smaller archive.") from exc
        if disk_full(exc) is not None:
            raise IngestError(DISK_FULL_SENTENCE) from exc
        raise
    report.seconds = round(time.perf_counter() - started, 3)
    progress(1.0)
    return report


def _assemble(layout: Layout, outcome: Outcome, item_splits: np.ndarray, options: PackOptions,
              progress, *, part: bool = False) -> PackReport:
    """Leaks out, checks, health report, extras, then the pack moved into place."""
    items, classes = layout.items, layout.classes
    rows = np.array(sorted(outcome.results), dtype=np.int64)  # item indices of decoded images
    if outcome.writer is None or not len(rows):
        raise IngestError(f"None of the {len(items)} images could be read; "
                          "see the list of unreadable files and check the archive's contents.")
    facts = _facts(layout, outcome, rows)
    splits = item_splits[rows]
    ids = hc.group_ids(facts.pixels)
    leaked, counterpart = hc.find_leaks(ids, splits)
    keep = ~leaked
    totals = np.bincount(facts.labels[keep], minlength=len(classes))
    unread = _unread_by_class(outcome, layout)
    for name, total in zip(classes, [] if part else totals):
        if total < 2:
            noun = "image" if total == 1 else "images"
            raise IngestError(f"Class '{name}' has only {int(total)} usable {noun}{unread.get(name, '')}; "
                              "every class needs at least 2.")
    progress(0.92)
    near, checked = _near_duplicates(outcome, facts, splits, keep, rows, seed=options.seed)
    corrupt, ignored = _entry_lists(layout, outcome)
    health = hc.report(classes=classes, facts=facts, ids=ids, splits=splits, leaked=leaked,
                       counterpart=counterpart, near=near, checked=checked, totals=totals,
                       corrupt=corrupt, ignored=ignored)
    health["restarts"] = outcome.restarts
    health["labels"] = layout.labels
    health["label_problems"] = layout.label_problems[:hc.MAX_LISTED]
    health["label_problems_count"] = len(layout.label_problems)
    plan = outcome.plan
    trained = np.bincount(facts.labels[keep & (splits == TRAIN)], minlength=len(classes))
    health["warnings"] = layout.warnings + hc.warnings_for(
        health=health, classes=classes, totals=totals.tolist(), trained=trained.tolist(), image_size=plan.size,
        channels=plan.channels, resize_mode=options.resize_mode)
    sizes = hc.size_summary(facts.sizes[keep])  # the chart shows what is in the pack
    resolved = {**asdict(options), "image_size": plan.size, "labels": layout.labels,
                "color": options.color if options.color != "auto" else ("grayscale" if plan.channels == 1 else "rgb")}
    writer = outcome.writer
    writer.save_json("names.json", [n for n, k in zip(facts.names, keep) if k])
    writer.save_array("original_sizes.npy", facts.sizes[keep])
    writer.save_json("health.json", health)
    writer.save_array("dhash.npy", facts.dhash[keep])
    hashes = np.frombuffer(b"".join(facts.pixels), dtype=np.uint8).reshape(-1, 16)[keep]
    pack = writer.finish(labels=facts.labels[keep], splits=splits[keep], classes=classes, keep=rows[keep],
                         train_sums=_train_sums(outcome, plan), pixel_hashes=hashes,
                         extra={"options": resolved, "original_sizes": sizes,
                                "layout": "splits" if layout.predefined else "classes"})
    counts = [{"name": name, **{s: int(((pack.labels == c) & (pack.splits == code)).sum())
                                for code, s in enumerate(SPLITS)}} for c, name in enumerate(classes)]
    return PackReport(pack_path=pack.path, classes=classes, counts=counts, num_images=len(pack), decoded=len(rows),
                      image_size=pack.image_size, channels=pack.channels, health=health, original_sizes=sizes,
                      mean=pack.mean, std=pack.std, options=resolved, content_hash=pack.content_hash)


def _read_one(src, entry) -> bytes:
    for _, data, reason in src.read([entry]):
        if data is None:
            raise IngestError(f"The label file {entry.name} could not be read ({reason}).")
        return data
    raise IngestError(f"The label file {entry.name} could not be read.")


def _facts(layout: Layout, outcome: Outcome, rows: np.ndarray) -> hc.Facts:
    items, results = layout.items, [outcome.results[i] for i in rows]
    return hc.Facts(
        names=[items[i].entry.name for i in rows],
        labels=np.array([items[i].label for i in rows], dtype=np.int64),
        pixels=[r.pixels for r in results], digests=[r.digest for r in results],
        dhash=np.array([r.dhash for r in results], dtype=np.uint64),
        sizes=np.array([(r.width, r.height) for r in results], dtype=np.int32).reshape(-1, 2),
        modes=[r.mode for r in results], formats=[r.format for r in results])


def _near_duplicates(outcome: Outcome, facts: hc.Facts, splits, keep, rows, *, seed: int):
    # The thumbnails confirm hash matches; until finish() compacts them, row = item index.
    staged = np.load(outcome.writer.thumbs_path, mmap_mode="r")
    return near_duplicates(facts.dhash, splits, keep, seed=seed, thumbs=lambda r: np.asarray(staged[rows[r]]))


def _train_sums(outcome: Outcome, plan) -> tuple[np.ndarray, np.ndarray]:
    """The train rows' pixel sums, gathered by the workers (zeros when no train image decoded)."""
    if outcome.pixel_sum is None:
        return (np.zeros((plan.size, plan.size, plan.channels), dtype=np.uint64),
                np.zeros(plan.channels, dtype=np.uint64))
    return outcome.pixel_sum, outcome.square_sum


def _unread_by_class(outcome: Outcome, layout: Layout) -> dict[str, str]:
    """Per class, a note of how many of its images could not be read (for the error sentence)."""
    lost = Counter(layout.classes[layout.items[i].label] for i in outcome.failures)
    return {name: f" ({n} could not be read)" for name, n in lost.items()}


def _entry_lists(layout: Layout, outcome: Outcome) -> tuple[list[dict], list[dict]]:
    """(corrupt, ignored): every entry that is not in the pack, with why. `ignored` holds hidden
    files and macOS metadata, which nobody meant as data; everything else is `corrupt`."""
    rows = [(e.name, e.skip) for e in layout.skipped]
    rows += [(layout.items[i].entry.name, reason) for i, reason in sorted(outcome.failures.items())]
    corrupt = [{"name": name, "reason": reason} for name, reason in rows if reason not in (HIDDEN, MACOSX)]
    ignored = [{"name": name, "reason": reason} for name, reason in rows if reason in (HIDDEN, MACOSX)]
    return corrupt, ignored


def _workers(processes: int | None, count: int) -> int:
    if processes is not None:
        return max(1, int(processes))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if count < INLINE_BELOW else cores


class _Progress:
    """Monotonic, throttled progress: at most a few calls a second, and always the final 1.0."""

    def __init__(self, callback: Callable[[float], None] | None):
        self.callback, self.last, self.sent_at = callback, 0.0, float("-inf")

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(self.last, fraction))
        now = time.monotonic()
        if self.callback is None or (fraction < 1.0 and now - self.sent_at < PROGRESS_INTERVAL):
            return
        if fraction == self.last and self.sent_at > float("-inf"):
            return
        self.last, self.sent_at = fraction, now
        self.callback(fraction)
