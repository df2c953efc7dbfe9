"""A new version of a pack: the parent's images minus the excluded ones, some relabelled, plus an
added archive, without decoding or copying what the parent already holds.

    report = derive_pack("packs/7", "packs/9", exclude=[3], relabel={5: "dog"}, addition="more.zip",
                         options=PackOptions(labels="filename"))

Only the added images are decoded (into a segment of their own, by `build_pack`); the parent's
image and thumbnail files become segments of the new pack by hard link, and the new pack's rows
say which segment rows it holds (pack.StackedRows). What is written is per-image bookkeeping
(labels, splits, hashes, names), the added pixels, and statistics adjusted by the rows that left
or joined the train split. The health report is measured again on the whole version from the
stored hashes: duplicates, conflicts, leaks (a held-out image whose pixels are in train is left
out, as at ingest) and near-duplicates.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import IngestError, PackError
from . import health as hc
from . import imaging
from .archive import Limits
from .layout import class_name
from .neardup import near_duplicates
from .pack import SPLITS, TRAIN, Pack, StackedRows, sums_of_rows, content_hash, open_pack
from .pipeline import PackOptions, PackReport, build_pack
from .stats import stats_from_sums

MAX_CLASS_NAME = 255
_ADDED = "added"


def derive_pack(parent_path: str | Path, out_dir: str | Path, *, exclude: Iterable[int] = (),
                relabel: dict[int, str] | None = None, addition: str | Path | None = None,
                options: PackOptions | None = None, limits: Limits | None = None,
                on_progress: Callable[[float], None] | None = None, processes: int | None = None) -> PackReport:
    """Write the version of `parent_path` with the given changes to `out_dir` (which must not exist).

    `exclude`: parent rows to leave out; `relabel`: parent row -> class name (new names add classes);
    `addition`: an archive of images to add, labelled by `options.labels`, split by its fractions and
    seed. Raises IngestError with one sentence for a change no version can be made of.
    """
    started = time.perf_counter()
    options = options or PackOptions()
    parent = open_pack(parent_path)
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise PackError(f"{out_dir} already exists; a pack never changes once written")
    excluded, relabel = check_changes(len(parent), exclude, relabel)
    if not len(excluded) and not relabel and addition is None:
        raise IngestError("A new version needs a change: images to add, to exclude or to relabel.")
    progress = on_progress or (lambda fraction: None)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        added = None
        if addition is not None:
            same = replace(options, image_size=parent.image_size, color="grayscale" if parent.channels == 1 else "rgb",
                           resize_mode=parent.meta.get("options", {}).get("resize_mode", options.resize_mode))
            report = build_pack(addition, tmp / _ADDED, same, limits=limits, processes=processes, part=True,
                                on_progress=lambda f: progress(0.85 * f))
            added = open_pack(report.pack_path)
        result = _compose(parent, added, excluded, relabel, tmp, options)
        shutil.rmtree(tmp / _ADDED, ignore_errors=True)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.pack_path = out_dir
    result.seconds = round(time.perf_counter() - started, 3)
    progress(1.0)
    return result


def check_changes(count: int, exclude, relabel) -> tuple[np.ndarray, dict[int, str]]:
    """(sorted unique rows to exclude, {row: class name}) of a version of `count` images; IngestError
    naming the field (`exclude` or `relabel`) for indices that are not whole numbers in range, or a
    class name that is not one (empty, over MAX_CLASS_NAME characters, with a '/', or with a control
    character: `layout.class_name`, which also NFC-normalises it as ingest does)."""
    exclude, relabel = [] if exclude is None else exclude, {} if relabel is None else relabel
    if not isinstance(exclude, (list, tuple, np.ndarray)) or \
            not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in exclude):
        raise IngestError("exclude must be a list of image indices (whole numbers).", field="exclude")
    if not isinstance(relabel, dict):
        raise IngestError("relabel must map image indices to class names.", field="relabel")
    rows = np.unique(np.asarray(exclude, dtype=np.int64))
    if len(rows) and (rows[0] < 0 or rows[-1] >= count):
        raise IngestError(f"exclude names image {int(rows[-1] if rows[-1] >= count else rows[0])}, but the version "
                          f"has images 0 to {count - 1}.", field="exclude")
    names = {}
    for key, name in relabel.items():
        row = int(key) if isinstance(key, (int, np.integer)) or (str(key).isascii() and str(key).isdigit()) else -1
        if not 0 <= row < count:
            raise IngestError(f"relabel keys must be image indices from 0 to {count - 1}; {str(key)[:20]!r} is not.",
                              field="relabel")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_CLASS_NAME or "/" in name:
            raise IngestError(f"relabel gives image {row} {str(name)[:40]!r}, which is not a class name "
                              f"(1 to {MAX_CLASS_NAME} characters, no '/').", field="relabel")
        names[row] = class_name(name.strip(), field="relabel")
    return rows, names


def _compose(parent: Pack, added: Pack | None, excluded: np.ndarray, relabel: dict[int, str], tmp: Path,
             options: PackOptions) -> PackReport:
    kept = np.setdiff1d(np.arange(len(parent)), excluded)
    images, thumbs, refs = _segments_of(parent, tmp, kept)
    names = [parent.names[i] for i in kept]
    labels = np.array(parent.classes, dtype=object)[parent.labels[kept]]
    for row, name in relabel.items():
        at = np.searchsorted(kept, row)
        if at < len(kept) and kept[at] == row:  # a row both excluded and relabelled is excluded
            labels[at] = name
    splits, hashes = parent.splits[kept], parent.pixel_hashes[kept]
    dhash, sizes = _dhashes(parent)[kept], _sizes(parent)[kept]
    pixel_sum, square_sum = parent.train_sums()
    gone = excluded[parent.splits[excluded] == TRAIN]
    if len(gone):
        out_sum, out_square = sums_of_rows(parent.images, gone)
        pixel_sum, square_sum = pixel_sum - out_sum, square_sum - out_square
    if added is not None:
        segment = len(images)
        images.append(_move(added.path / "images.npy", tmp / f"images.{segment}.npy"))
        thumbs.append(_move(added.path / "thumbs.npy", tmp / f"thumbs.{segment}.npy"))
        refs = np.concatenate([refs, np.stack([np.full(len(added), segment), np.arange(len(added))], axis=1)])
        names += added.names
        labels = np.concatenate([labels, np.array(added.classes, dtype=object)[added.labels]])
        splits, hashes = np.concatenate([splits, added.splits]), np.concatenate([hashes, added.pixel_hashes])
        dhash, sizes = np.concatenate([dhash, _dhashes(added)]), np.concatenate([sizes, _sizes(added)])
        in_sum, in_square = added.train_sums()
        pixel_sum, square_sum = pixel_sum + in_sum, square_sum + in_square

    ids = hc.group_ids_of(hashes)
    leaked, counterpart = hc.find_leaks(ids, splits)
    keep = ~leaked
    present = set(labels[keep].tolist())
    classes = [c for c in parent.classes if c in present] + sorted(present - set(parent.classes))
    index = {c: i for i, c in enumerate(classes)}
    codes = np.array([index.get(c, -1) for c in labels.tolist()], dtype=np.int64)
    totals = np.bincount(codes[keep], minlength=len(classes))
    _check_classes(classes, totals)

    thumb_view = StackedRows([np.load(p, mmap_mode="r") for p in thumbs], refs)
    near, checked = near_duplicates(dhash, splits, keep, seed=options.seed,
                                    thumbs=lambda rows: np.asarray(thumb_view.take(rows)))
    facts = hc.Facts(names=names, labels=codes, pixels=[bytes(h) for h in hashes], digests=[bytes(h) for h in hashes],
                     dhash=dhash, sizes=sizes, modes=[], formats=[])
    health = hc.report(classes=classes, facts=facts, ids=ids, splits=splits, leaked=leaked, counterpart=counterpart,
                       near=near, checked=checked, totals=totals, **_entry_lists(parent, added))
    health.update(_carried(parent, added, changes={"added": 0 if added is None else len(added),
                                                        "excluded": int(len(excluded)), "relabelled": len(relabel),
                                                        "leaks_removed": int(leaked.sum())}))
    trained = np.bincount(codes[keep & (splits == TRAIN)], minlength=len(classes))
    resize_mode = parent.meta.get("options", {}).get("resize_mode", options.resize_mode)
    health["warnings"] = hc.warnings_for(health=health, classes=classes, totals=totals.tolist(),
                                         trained=trained.tolist(), image_size=parent.image_size,
                                         channels=parent.channels, resize_mode=resize_mode)
    rows, codes, splits, hashes = refs[keep], codes[keep], splits[keep], hashes[keep]
    count = int(keep.sum())
    mean, std, mean_image = stats_from_sums(pixel_sum, square_sum, int((splits == TRAIN).sum()))
    np.save(tmp / "rows.npy", rows)
    np.save(tmp / "labels.npy", codes)
    np.save(tmp / "splits.npy", splits.astype(np.int8))
    np.save(tmp / "pixel_hashes.npy", hashes)
    np.save(tmp / "dhash.npy", dhash[keep])
    np.save(tmp / "mean_image.npy", mean_image)
    np.save(tmp / "original_sizes.npy", sizes[keep].astype(np.int32))
    np.savez(tmp / "train_sums.npz", pixel_sum=pixel_sum, square_sum=square_sum)
    (tmp / "names.json").write_text(json.dumps([n for n, k in zip(names, keep) if k], ensure_ascii=False))
    (tmp / "health.json").write_text(json.dumps(health, ensure_ascii=False))
    digest = content_hash(hashes, codes, splits, classes)
    resolved = {**parent.meta.get("options", {}), "seed": options.seed}
    counts = [{"name": c, **{s: int(((codes == i) & (splits == code)).sum()) for code, s in enumerate(SPLITS)}}
              for i, c in enumerate(classes)]
    meta = {**{k: v for k, v in parent.meta.items() if k not in ("segments", "parent")},
            "classes": classes, "num_images": count, "mean": mean, "std": std, "segments": len(images),
            "counts": {s: int((splits == code).sum()) for code, s in enumerate(SPLITS)},
            "content_hash": digest, "parent": parent.content_hash, "options": resolved,
            "original_sizes": hc.size_summary(sizes[keep])}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    return PackReport(pack_path=tmp, classes=classes, counts=counts, num_images=count, image_size=parent.image_size,
                      channels=parent.channels, health=health, original_sizes=meta["original_sizes"], mean=mean,
                      std=std, options=resolved, content_hash=digest, decoded=0 if added is None else len(added))


def _segments_of(parent: Pack, tmp: Path, kept: np.ndarray) -> tuple[list[Path], list[Path], np.ndarray]:
    """Link the parent's segments that still hold a kept row into `tmp`, numbered afresh; the kept
    rows' (segment, row) in the new numbering."""
    if "segments" in parent.meta:
        refs = np.load(parent.path / "rows.npy", allow_pickle=False)[kept]
        sources = [(parent.path / f"images.{k}.npy", parent.path / f"thumbs.{k}.npy")
                   for k in range(parent.meta["segments"])]
    else:
        refs = np.stack([np.zeros(len(kept), dtype=np.int64), kept], axis=1)
        sources = [(parent.path / "images.npy", parent.path / "thumbs.npy")]
    used = np.unique(refs[:, 0]) if len(refs) else np.array([], dtype=np.int64)
    renumber = np.full(len(sources), -1, dtype=np.int64)
    renumber[used] = np.arange(len(used))
    refs = np.stack([renumber[refs[:, 0]], refs[:, 1]], axis=1) if len(refs) else refs.reshape(0, 2)
    images, thumbs = [], []
    for new, old in enumerate(used):
        image_file, thumb_file = sources[int(old)]
        images.append(_link(image_file, tmp / f"images.{new}.npy"))
        thumbs.append(_link(thumb_file, tmp / f"thumbs.{new}.npy"))
    return images, thumbs, refs


def _link(source: Path, target: Path) -> Path:
    """A hard link; a copy where the filesystem has none (the version then costs its full size)."""
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(source, target)
    return target


def _move(source: Path, target: Path) -> Path:
    os.replace(source, target)
    return target


def _dhashes(pack: Pack) -> np.ndarray:
    """The stored perceptual hashes, or (packs made before they were kept) measured on the thumbnails."""
    if pack.dhashes is not None:
        return pack.dhashes
    thumbs, step = pack.thumbs, 4096
    return np.concatenate([imaging.dhashes(np.asarray(thumbs[i:i + step])) for i in range(0, len(pack), step)]
                          or [np.zeros(0, dtype=np.uint64)])


def _sizes(pack: Pack) -> np.ndarray:
    sizes = pack.original_sizes
    return np.zeros((len(pack), 2), dtype=np.int32) if sizes is None else np.asarray(sizes, dtype=np.int32)


def _check_classes(classes: list[str], totals: np.ndarray) -> None:
    if len(classes) < 2:
        raise IngestError("The new version would hold a single class; a classifier needs at least two.")
    for name, total in zip(classes, totals):
        if total < 2:
            raise IngestError(f"Class '{name}' would have only {int(total)} image in the new version; "
                              "every class needs at least 2.")


def _entry_lists(parent: Pack, added: Pack | None) -> dict:
    """The files left out at upload: the parent's (still true of its archive) and the addition's."""
    lists = {"corrupt": [], "ignored": []}
    for pack in (parent, added):
        health = (pack.health or {}) if pack is not None else {}
        for key in lists:
            lists[key] += health.get(key, [])
    return {key: value[:hc.MAX_LISTED] for key, value in lists.items()}


def _carried(parent: Pack, added: Pack | None, *, changes: dict) -> dict:
    """What the stored hashes cannot measure again: colour modes and formats as uploaded, the label
    source and the label file's problems (the addition's)."""
    before, extra = parent.health or {}, (added.health or {}) if added is not None else {}
    modes, formats = Counter(before.get("modes", {})), Counter(before.get("formats", {}))
    modes.update(extra.get("modes", {}))
    formats.update(extra.get("formats", {}))
    return {"modes": dict(modes.most_common()), "formats": dict(formats.most_common()),
            "labels": extra.get("labels", before.get("labels", "folders")),
            "label_problems": extra.get("label_problems", []),
            "label_problems_count": extra.get("label_problems_count", 0),
            "corrupt_count": before.get("corrupt_count", 0) + extra.get("corrupt_count", 0),
            "ignored_count": before.get("ignored_count", 0) + extra.get("ignored_count", 0),
            "changes": changes}


__all__ = ["derive_pack"]
