"""Writing a pack (the format is `pack`'s): `PackWriter` for ingest, which decodes straight into the
final file and drops unusable rows at the end, and `write_pack` for arrays already in memory.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..diskspace import allocated_memmap
from ..errors import PackError
from .imaging import thumb_size, thumbnail
from .pack import CHUNK_BYTES, FORMAT, SPLITS, TRAIN, VERSION, Pack, content_hash, hash_rows, open_pack
from .stats import file_pixel_sums, stats_from_sums

__all__ = ["PackWriter", "write_pack"]


class PackWriter:
    """Writes a pack into `<path>.partial`, renamed to `path` by `finish`; `abort` leaves nothing.

    `count` is a capacity: `finish(keep=...)` drops the rows that are not kept (unreadable images,
    leaked copies) by compacting the arrays in place, so ingest can decode straight into the final
    file before it knows which images survive.
    """

    def __init__(self, path: str | os.PathLike, *, count: int, image_size: int, channels: int,
                 with_thumbs: bool = False):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        if self.path.exists():
            raise PackError(f"{self.path} already exists; a pack never changes once written")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.image_size, self.channels = image_size, channels
        self.thumb_size = thumb_size(image_size)
        self.images = self.thumbs = None
        try:
            # Blocks reserved up front: a full disk fails here, not with SIGBUS halfway through decoding.
            self.images = allocated_memmap(self.images_path, dtype=np.uint8,
                                           shape=(count, image_size, image_size, channels))
            if with_thumbs:
                t = self.thumb_size
                self.thumbs = allocated_memmap(self.thumbs_path, dtype=np.uint8, shape=(count, t, t, channels))
        except BaseException:
            self.abort()  # nobody holds this writer yet to abort it
            raise

    @property
    def images_path(self) -> Path:
        return self.tmp / "images.npy"

    @property
    def thumbs_path(self) -> Path:
        return self.tmp / "thumbs.npy"

    def put(self, index: int, array: np.ndarray) -> None:
        self.images[index] = array
        if self.thumbs is not None:
            self.thumbs[index] = thumbnail(array, size=self.thumb_size)

    def save_json(self, name: str, obj: Any) -> None:
        """Add a JSON file to the pack (names.json, health.json, ...)."""
        (self.tmp / _plain_name(name)).write_text(json.dumps(obj, ensure_ascii=False))

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Add an .npy file to the pack (original_sizes.npy, ...)."""
        np.save(self.tmp / _plain_name(name), np.asarray(array), allow_pickle=False)

    def finish(self, *, labels, splits, classes: list[str], extra: dict | None = None,
               keep: np.ndarray | None = None, train_sums: tuple[np.ndarray, np.ndarray] | None = None,
               pixel_hashes: np.ndarray | None = None) -> Pack:
        """Complete the pack and move it into place.

        `keep`: the rows that stay (sorted), when `count` was a capacity. `train_sums`: the
        `pixel_sums` of the train rows when the caller already has them (ingest gathers them while
        decoding), which saves a pass over the images.
        """
        labels = np.asarray(labels, dtype=np.int64)
        splits = np.asarray(splits, dtype=np.int8)
        count = len(self.images) if keep is None else len(keep)
        if labels.shape != (count,) or splits.shape != labels.shape:
            raise PackError("labels and splits must have one entry per image")
        for array in (self.images, self.thumbs):
            if array is not None and keep is not None:
                _compact_rows(array, np.asarray(keep, dtype=np.int64))
            if array is not None:
                array.flush()
        array = self.images = self.thumbs = None  # close the memory maps before shrinking and renaming
        if keep is not None:
            _shrink_npy(self.images_path, count)
            if self.thumbs_path.exists():
                _shrink_npy(self.thumbs_path, count)
        if not self.thumbs_path.exists():
            images = np.load(self.images_path, mmap_mode="r")
            _write_thumbs(images, self.thumbs_path, self.thumb_size)
            del images
        train = splits == TRAIN
        pixel_sum, square_sum = train_sums or file_pixel_sums(self.images_path, train)
        mean, std, mean_image = stats_from_sums(pixel_sum, square_sum, int(train.sum()))
        np.savez(self.tmp / "train_sums.npz", pixel_sum=pixel_sum, square_sum=square_sum)
        if pixel_hashes is None:
            images = np.load(self.images_path, mmap_mode="r")
            pixel_hashes = hash_rows(images)
            del images
        np.save(self.tmp / "pixel_hashes.npy", np.asarray(pixel_hashes, dtype=np.uint8).reshape(count, 16))
        np.save(self.tmp / "labels.npy", labels)
        np.save(self.tmp / "splits.npy", splits)
        np.save(self.tmp / "mean_image.npy", mean_image)
        meta = {
            "format": FORMAT, "version": VERSION, "classes": list(classes),
            "image_size": self.image_size, "channels": self.channels, "num_images": int(len(labels)),
            "thumb_size": self.thumb_size, "mean": mean, "std": std,
            "counts": {name: int((splits == code).sum()) for code, name in enumerate(SPLITS)},
            "content_hash": content_hash(pixel_hashes, labels, splits, classes),
            **(extra or {}),
        }
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
        os.replace(self.tmp, self.path)
        return open_pack(self.path)

    def abort(self) -> None:
        self.images = self.thumbs = None
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_pack(path, images: np.ndarray, labels, splits, classes, extra: dict | None = None, *,
               names: list[str] | None = None, original_sizes: np.ndarray | None = None) -> Pack:
    """Write an in-memory N x H x W x C uint8 array as a pack (tests, benchmarks, the sample set)."""
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    writer = PackWriter(path, count=len(images), image_size=images.shape[1], channels=images.shape[3])
    try:
        writer.images[:] = images
        if names is not None:
            writer.save_json("names.json", [str(n) for n in names])
        if original_sizes is not None:
            writer.save_array("original_sizes.npy", np.asarray(original_sizes, dtype=np.int32))
        return writer.finish(labels=labels, splits=splits, classes=classes, extra=extra)
    except BaseException:
        writer.abort()
        raise


def _write_thumbs(images: np.ndarray, path: Path, size: int) -> None:
    n, _, _, c = images.shape
    thumbs = allocated_memmap(path, dtype=np.uint8, shape=(n, size, size, c))
    for i in range(n):
        thumbs[i] = thumbnail(np.asarray(images[i]), size=size)
    thumbs.flush()
    del thumbs


def _compact_rows(array: np.ndarray, keep: np.ndarray) -> None:
    """Move rows `keep` (sorted, unique) to the front, in order, without a second copy of the array."""
    if len(keep) and (np.any(np.diff(keep) <= 0) or keep[0] < 0 or keep[-1] >= len(array)):
        raise PackError("keep must be sorted, unique row indices")
    block = max(1, CHUNK_BYTES // max(1, array[0].nbytes if len(array) else 1))
    breaks = np.flatnonzero(np.diff(keep) != 1) + 1
    dest = 0
    for run in np.split(keep, breaks):
        if not len(run):
            continue
        src, length = int(run[0]), len(run)
        if src != dest:
            # Front to back in blocks: src >= dest, so no row is overwritten before it is read.
            for k in range(0, length, block):
                m = min(block, length - k)
                array[dest + k:dest + k + m] = array[src + k:src + k + m]
        dest += length


def _shrink_npy(path: Path, rows: int) -> None:
    """Rewrite an .npy header to `rows` rows (same header length) and cut the file after them."""
    with open(path, "r+b") as f:
        major, _ = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(f)
        offset = f.tell()
        prefix = 8 + (2 if major == 1 else 4)
        new_shape = (rows, *shape[1:])
        text = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (
            np.lib.format.dtype_to_descr(dtype), fortran, new_shape)
        body = text.encode("latin1")
        if len(body) + 1 > offset - prefix:
            raise PackError(f"cannot shrink {path.name}: header does not fit")
        f.seek(prefix)
        f.write(body + b" " * (offset - prefix - len(body) - 1) + b"\n")
        f.truncate(offset + rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)


def _plain_name(name: str) -> str:
    if "/" in name or "\\" in name or name.startswith(".") or name in ("meta.json", "images.npy"):
        raise PackError(f"{name!r} is not a name a pack extra may have")
    return name
