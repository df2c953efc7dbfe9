"""Statistics of a pack's train split (per-channel mean and std, the mean image), exact and fast.

Sums are integers: squares of uint8 fit in uint16 and sixteen of them in uint32, so every pass is
a vectorised reduction over the image axis instead of a float64 copy of each batch (several
times slower, on every ingest). The decode workers use the same sums while they write.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_CHUNK_BYTES = 64 * 2**20  # bounded working memory for passes over the image array


def channel_stats(images: np.ndarray, idx: np.ndarray, chunk: int | None = None) -> tuple[list, list, np.ndarray]:
    """Per-channel mean and std and the mean image of images[idx], in [0, 1], in bounded memory."""
    _, h, w, c = images.shape
    chunk = chunk or max(1, _CHUNK_BYTES // max(1, h * w * c))
    idx = np.sort(np.asarray(idx, dtype=np.int64))

    def batches():
        for start in range(0, len(idx), chunk):
            part = idx[start:start + chunk]
            contiguous = part[-1] - part[0] == len(part) - 1
            yield np.asarray(images[part[0]:part[-1] + 1] if contiguous else images[part])

    pixel_sum, square_sum = pixel_sums(batches(), (h, w, c))
    return stats_from_sums(pixel_sum, square_sum, len(idx))


def pixel_sums(batches, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(H x W x C uint64 sum of the images, C uint64 sum of their squared values) over batches."""
    h, w, c = shape
    step = 16
    pixel_sum = np.zeros(shape, dtype=np.uint64)
    square_image = np.zeros(shape, dtype=np.uint64)
    squares = np.empty((step, h, w, c), dtype=np.uint16)
    for batch in batches:
        pixel_sum += batch.sum(axis=0, dtype=np.uint32 if len(batch) < 2**24 else np.uint64)
        for s in range(0, len(batch), step):
            rows = batch[s:s + step]
            np.multiply(rows, rows, out=squares[:len(rows)], dtype=np.uint16)
            square_image += squares[:len(rows)].sum(axis=0, dtype=np.uint32)
    return pixel_sum, channel_totals(square_image)


def channel_totals(image: np.ndarray) -> np.ndarray:
    """C uint64 totals of an H x W x C integer array. numpy's reduction over the long first axis of
    (H*W, C) runs a few elements wide and is ~10x slower than this matrix-vector product, which is
    exact here: float64 holds integers to 2**53, far above any sum of uint8 squares in one pack row."""
    flat = image.reshape(-1, image.shape[-1]).astype(np.float64)
    return np.rint(np.ones(len(flat)) @ flat).astype(np.uint64)


def stats_from_sums(pixel_sum: np.ndarray, square_sum: np.ndarray, count: int) -> tuple[list, list, np.ndarray]:
    """(per-channel mean, per-channel std, mean image), in [0, 1], from `pixel_sums` of `count` images."""
    h, w, c = pixel_sum.shape
    count = max(int(count), 1)
    pixel_sum = pixel_sum.astype(np.float64)
    mean_image = (pixel_sum / (count * 255.0)).astype(np.float32)
    pixels = float(count * h * w)
    mean = pixel_sum.reshape(-1, c).sum(axis=0) / (pixels * 255.0)
    var = square_sum.astype(np.float64) / (pixels * 255.0**2) - np.square(mean)
    std = np.sqrt(np.maximum(var, 1e-12))
    return mean.tolist(), std.tolist(), mean_image


def file_pixel_sums(path: Path, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`pixel_sums` of the rows of an .npy image file selected by the mask `rows`, reading in order:
    plain reads from the page cache beat first-touch page faults on a fresh memory map."""
    with open(path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, _ = reader(f)
        per_row = int(np.prod(shape[1:]))
        chunk = max(1, _CHUNK_BYTES // max(1, per_row))

        def batches():
            buffer = np.empty(chunk * per_row, dtype=np.uint8)
            for start in range(0, shape[0], chunk):
                k = min(chunk, shape[0] - start)
                wanted = rows[start:start + k]
                if not wanted.any():
                    f.seek(k * per_row, os.SEEK_CUR)
                    continue
                f.readinto(memoryview(buffer)[:k * per_row])
                batch = buffer[:k * per_row].reshape(k, *shape[1:])
                yield batch if wanted.all() else batch[wanted]

        return pixel_sums(batches(), tuple(shape[1:]))
