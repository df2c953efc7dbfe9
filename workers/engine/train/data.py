"""Batches of a pack on one device, the same way for training, evaluation and prediction.

A pack that fits moves to the device once and batches are gathered there by index (airbench,
hlb-CIFAR10): no loader processes, no per-image Python. A pack too big for that streams from its
memory map: a background thread gathers each batch into pinned memory, and the copy to the device
runs asynchronously while the previous batch trains.

Both paths sort the indices inside each batch (reading a memory map in order is faster), so they
yield exactly the same batches and give the same results.
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Iterator, NamedTuple

import numpy as np
import torch

from ..ingest.pack import Pack

# Share of free device memory (or of RAM on the CPU) a pack may take and still be made resident;
# the rest is for activations, the optimizer and the host itself.
RESIDENT_SHARE_CUDA = 0.4
RESIDENT_SHARE_RAM = 0.25
_COPY_CHUNK = 8192


class Batch(NamedTuple):
    images: torch.Tensor  # uint8 N x H x W x C on the device
    labels: torch.Tensor  # int64 N on the device
    index: torch.Tensor  # int64 N: positions in the pack (for misclassified samples)


class PackedDataset:
    def __init__(self, pack: Pack, *, device: torch.device, resident: bool | None = None, prefetch: int = 4):
        self.pack = pack
        self.device = device
        self.prefetch = prefetch
        self.resident = fits_on_device(pack.images.nbytes, device) if resident is None else resident
        self._split_indices = {name: pack.indices(name) for name in ("train", "val", "test")}
        if self.resident:
            self.images = _to_device(pack.images, device)
            self.labels = torch.from_numpy(pack.labels).to(device)
            self._device_indices = {name: torch.from_numpy(idx).to(device)
                                    for name, idx in self._split_indices.items()}

    def size(self, split: str) -> int:
        return len(self._split_indices[split])

    def num_batches(self, split: str, *, batch_size: int, drop_last: bool) -> int:
        n = self.size(split)
        if drop_last and n >= batch_size:
            return n // batch_size
        return -(-n // batch_size)

    def batches(self, split: str, *, batch_size: int, shuffle_seed: int | None = None,
                drop_last: bool = False, start: int = 0) -> Iterator[Batch]:
        """Batches of one split; `shuffle_seed` fixes the order, `start` skips batches already done.

        Training drops the last, short batch (when there is at least one full one) so every step
        has the same shape and batch-norm never sees a batch of one.
        """
        count = self.num_batches(split, batch_size=batch_size, drop_last=drop_last)
        order = self._order(split, shuffle_seed)
        chunks = (order[b * batch_size:(b + 1) * batch_size] for b in range(start, count))
        if self.resident:
            for idx in chunks:
                idx = idx.sort().values
                yield Batch(self.images[idx], self.labels[idx], idx)
        else:
            yield from self._stream(chunks)

    def _order(self, split: str, shuffle_seed: int | None) -> torch.Tensor:
        idx = self._device_indices[split] if self.resident else torch.from_numpy(self._split_indices[split])
        if shuffle_seed is None:
            return idx
        # A generator on the data's own device keeps the permutation off the host on a GPU.
        g = torch.Generator(device=idx.device).manual_seed(shuffle_seed)
        return idx[torch.randperm(len(idx), generator=g, device=idx.device)]

    def _stream(self, chunks: Iterator[torch.Tensor]) -> Iterator[Batch]:
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        done = object()
        pin = self.device.type == "cuda"

        def read() -> None:
            try:
                for idx in chunks:
                    if stop.is_set():
                        return
                    idx = idx.sort().values
                    rows = idx.numpy()
                    images = torch.empty((len(rows), *self.pack.images.shape[1:]), dtype=torch.uint8, pin_memory=pin)
                    np.take(self.pack.images, rows, axis=0, out=images.numpy())
                    labels = torch.from_numpy(self.pack.labels[rows])
                    ready.put((images, labels.pin_memory() if pin else labels, idx))
                ready.put(done)
            except BaseException as exc:  # handed to the consumer, which raises it
                ready.put(exc)

        reader = threading.Thread(target=read, name="pack-reader", daemon=True)
        reader.start()
        try:
            while True:
                item = ready.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                images, labels, idx = item
                yield Batch(images.to(self.device, non_blocking=True),
                            labels.to(self.device, non_blocking=True), idx)
        finally:
            # The consumer may leave early (a stop request); unblock the reader and let it end.
            stop.set()
            while reader.is_alive():
                try:
                    ready.get_nowait()
                except queue.Empty:
                    reader.join(timeout=0.05)


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return nbytes <= RESIDENT_SHARE_CUDA * free
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return nbytes <= RESIDENT_SHARE_RAM * ram


def _to_device(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """Copy a memory map to the device in chunks, never holding a second full copy on the host."""
    out = torch.empty(images.shape, dtype=torch.uint8, device=device)
    for start in range(0, len(images), _COPY_CHUNK):
        chunk = np.array(images[start:start + _COPY_CHUNK])
        out[start:start + len(chunk)].copy_(torch.from_numpy(chunk))
    return out
