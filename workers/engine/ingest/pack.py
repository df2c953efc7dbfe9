"""The on-disk pack: every image of a dataset decoded once into one uint8 array.

A pack is a directory:

    images.npy          N x H x W x C uint8, opened memory-mapped
    labels.npy          N int64 class indices
    splits.npy          N int8: 0 train, 1 val, 2 test
    mean_image.npy      H x W x C float32 in [0, 1], mean of the train split
    thumbs.npy          N x T x T x C uint8 gallery thumbnails, T = min(image_size, 64)
    names.json          (optional) N display names: each image's path inside the upload
    original_sizes.npy  (optional) N x 2 int32 (width, height) before resizing
    health.json         (optional) the ingest's health report
    pixel_hashes.npy    (optional) N x 16 uint8: the first 128 bits of SHA-256 of each packed image
    dhash.npy           (optional) N uint64 perceptual hashes (near-duplicates)
    train_sums.npz      (optional) the train split's pixel sums, from which a version's statistics follow
    meta.json           format, classes, image_size, channels, per-channel mean/std of the train split,
                        content_hash, ...

`meta.json` is written last, so a directory without it is not a pack. `pack_writer.PackWriter` builds
the pack in a sibling `*.partial` directory and renames it into place only when complete.

A version's pack (`versions.derive_pack`) holds no pixels of its own for the rows it shares: its
`segments` are hard links to the image files of the packs it was made from (`images.K.npy`,
`thumbs.K.npy`), and `rows.npy` (N x 2: segment, row) says where each of its images is. A hard
link keeps the bytes alive when the older version is deleted, and no pack is ever written to
again, so sharing is safe.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PackError
from .imaging import thumb_size
from .stats import channel_stats, pixel_sums

__all__ = ["FORMAT", "VERSION", "SPLITS", "TRAIN", "VAL", "TEST", "Pack", "PackError", "open_pack",
           "channel_stats", "content_hash", "StackedRows", "CHUNK_BYTES"]

FORMAT = "dlstudio-pack"
VERSION = 1
SPLITS = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2
CHUNK_BYTES = 64 * 2**20  # bounded working memory for passes over the image array


class StackedRows:
    """The rows of several memory-mapped arrays as one read-only N x ... array: a version's images.

    Supports what readers of a pack do: `shape`, `len`, `nbytes`, an int, a slice or an index array,
    and `np.take(..., axis=0, out=...)`; reading copies only the rows asked for.
    """

    def __init__(self, segments: list[np.ndarray], rows: np.ndarray):
        self.segments, self.rows = segments, np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        self.dtype = segments[0].dtype if segments else np.dtype(np.uint8)
        self.shape = (len(self.rows), *(segments[0].shape[1:] if segments else ()))
        self.ndim = len(self.shape)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            segment, row = self.rows[key]
            return self.segments[segment][row]
        return self.take(np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key))

    def take(self, indices, axis=0, out=None, mode="raise"):
        if axis != 0:
            raise ValueError("a pack's rows can only be taken along axis 0")
        refs = self.rows[np.asarray(indices, dtype=np.int64)]
        out = np.empty((len(refs), *self.shape[1:]), dtype=self.dtype) if out is None else out
        for segment in np.unique(refs[:, 0]) if len(refs) else ():
            where = np.flatnonzero(refs[:, 0] == segment)
            out[where] = self.segments[segment][refs[where, 1]]
        return out

    def __array__(self, dtype=None, copy=None):
        whole = self.take(np.arange(len(self)))
        return whole if dtype is None else whole.astype(dtype)


def content_hash(pixel_hashes: np.ndarray, labels: np.ndarray, splits: np.ndarray, classes: list[str]) -> str:
    """SHA-256 over the sorted (image hash, class, split) rows: equal data, equal hash, whatever the order
    of the rows or of the classes. A row's class is its rank among the sorted class names, which the
    digest begins with, so the hash names the classes while the rows sort as fixed-size bytes."""
    names = sorted(classes)
    rank = np.array([names.index(c) for c in classes], dtype=">u4")
    rows = np.zeros(len(labels), dtype=[("hash", "V16"), ("class", ">u4"), ("split", "u1")])
    rows["hash"] = np.ascontiguousarray(np.asarray(pixel_hashes, dtype=np.uint8).reshape(-1, 16)).view("V16")[:, 0]
    rows["class"] = rank[np.asarray(labels, dtype=np.int64)] if len(labels) else 0
    rows["split"] = np.asarray(splits, dtype=np.uint8)
    digest = hashlib.sha256(json.dumps(names, ensure_ascii=False).encode() + b"\n")
    digest.update(np.sort(rows.view(f"V{rows.dtype.itemsize}")).tobytes())
    return digest.hexdigest()


def hash_rows(images) -> np.ndarray:
    """N x 16 uint8: the first 128 bits of SHA-256 of each row (as ingest hashes each packed image)."""
    out = np.zeros((len(images), 16), dtype=np.uint8)
    for i in range(len(images)):
        out[i] = np.frombuffer(hashlib.sha256(np.ascontiguousarray(images[i])).digest()[:16], dtype=np.uint8)
    return out


@dataclass
class Pack:
    path: Path
    images: np.ndarray | StackedRows  # N x H x W x C uint8 (memory map, or a version's stacked segments)
    labels: np.ndarray  # N int64
    splits: np.ndarray  # N int8
    mean_image: np.ndarray  # H x W x C float32 in [0, 1]
    meta: dict[str, Any] = field(default_factory=dict)
    _extras: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def channels(self) -> int:
        return int(self.meta["channels"])

    @property
    def mean(self) -> list[float]:
        return list(self.meta["mean"])

    @property
    def std(self) -> list[float]:
        return list(self.meta["std"])

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def indices(self, split: str | int) -> np.ndarray:
        code = SPLITS.index(split) if isinstance(split, str) else int(split)
        return np.flatnonzero(self.splits == code)

    # The extras below are read on first use: training never needs them, the web pages do.
    @property
    def names(self) -> list[str]:
        """Each image's display name (its path in the upload); the index when the pack has none."""
        if "names" not in self._extras:
            path = self.path / "names.json"
            names = json.loads(path.read_text()) if path.is_file() else [str(i) for i in range(len(self))]
            if len(names) != len(self):
                raise PackError(f"{self.path}: names.json has {len(names)} names for {len(self)} images")
            self._extras["names"] = names
        return self._extras["names"]

    @property
    def original_sizes(self) -> np.ndarray | None:
        """N x 2 int32 (width, height) of each image before resizing, or None for packs without."""
        if "original_sizes" not in self._extras:
            self._extras["original_sizes"] = self._load_extra("original_sizes.npy", (len(self), 2))
        return self._extras["original_sizes"]

    @property
    def thumbs(self) -> np.ndarray | None:
        """N x T x T x C uint8 thumbnails (memory map), or None for packs without."""
        if "thumbs" not in self._extras:
            t = thumb_size(self.image_size)
            if "segments" in self.meta:
                self._extras["thumbs"] = _open_images(self.path, self.meta, "thumbs")
            else:
                self._extras["thumbs"] = self._load_extra("thumbs.npy", (len(self), t, t, self.channels), mmap=True)
        return self._extras["thumbs"]

    @property
    def pixel_hashes(self) -> np.ndarray:
        """N x 16 uint8 hashes of the packed images (measured here for packs made before they were kept)."""
        if "pixel_hashes" not in self._extras:
            stored = self._load_extra("pixel_hashes.npy", (len(self), 16))
            self._extras["pixel_hashes"] = stored if stored is not None else hash_rows(self.images)
        return self._extras["pixel_hashes"]

    @property
    def dhashes(self) -> np.ndarray | None:
        if "dhashes" not in self._extras:
            self._extras["dhashes"] = self._load_extra("dhash.npy", (len(self),))
        return self._extras["dhashes"]

    @property
    def content_hash(self) -> str:
        return self.meta.get("content_hash") or content_hash(self.pixel_hashes, self.labels, self.splits,
                                                             self.classes)

    def train_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """(pixel_sum H x W x C, square_sum C) of the train split, uint64."""
        path = self.path / "train_sums.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as sums:
                return sums["pixel_sum"], sums["square_sum"]
        return sums_of_rows(self.images, self.indices(TRAIN))

    @property
    def health(self) -> dict[str, Any] | None:
        if "health" not in self._extras:
            path = self.path / "health.json"
            self._extras["health"] = json.loads(path.read_text()) if path.is_file() else None
        return self._extras["health"]

    def _load_extra(self, name: str, shape: tuple, mmap: bool = False) -> np.ndarray | None:
        path = self.path / name
        if not path.is_file():
            return None
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        if array.shape != shape:
            raise PackError(f"{self.path}: {name} has shape {array.shape}, expected {shape}")
        return array


def _open_images(path: Path, meta: dict, kind: str) -> np.ndarray | StackedRows:
    if "segments" not in meta:
        return np.load(path / f"{kind}.npy", mmap_mode="r", allow_pickle=False)
    segments = [np.load(path / f"{kind}.{k}.npy", mmap_mode="r", allow_pickle=False) for k in range(meta["segments"])]
    rows = np.load(path / "rows.npy", allow_pickle=False)
    if len(rows) and (rows[:, 0].max() >= len(segments) or
                      any(rows[rows[:, 0] == k, 1].max(initial=-1) >= len(seg) for k, seg in enumerate(segments))):
        raise PackError(f"{path}: rows.npy points outside its segments")
    return StackedRows(segments, rows)


def sums_of_rows(images, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shape = images.shape[1:]
    block = max(1, CHUNK_BYTES // max(1, int(np.prod(shape))))
    return pixel_sums((np.asarray(images[np.sort(rows)[i:i + block]]) for i in range(0, len(rows), block)), shape)


def open_pack(path: str | os.PathLike) -> Pack:
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise PackError(f"{path} is not a complete pack (meta.json is missing)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise PackError(f"{path} is not a version {VERSION} dlstudio pack")
    images = _open_images(path, meta, "images")
    labels = np.load(path / "labels.npy", allow_pickle=False)
    splits = np.load(path / "splits.npy", allow_pickle=False)
    mean_image = np.load(path / "mean_image.npy", allow_pickle=False)
    n, size, channels = len(labels), int(meta["image_size"]), int(meta["channels"])
    if images.dtype != np.uint8 or images.shape != (n, size, size, channels):
        raise PackError(f"{path}: images.npy has shape {images.shape}, expected {(n, size, size, channels)}")
    if splits.shape != (n,) or (n and (labels.min() < 0 or labels.max() >= len(meta["classes"]))):
        raise PackError(f"{path}: labels or splits do not match the images")
    return Pack(path=path, images=images, labels=labels.astype(np.int64), splits=splits.astype(np.int8),
                mean_image=mean_image.astype(np.float32), meta=meta)
