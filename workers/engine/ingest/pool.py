"""The decode workers: a process pool that turns image bytes into packed rows on every core.

Workers receive chunks of entries — the bytes themselves for a tar stream, which only the parent
can read in order, or a reference to read for folders and zips, which the workers read and
inflate themselves, in parallel, through `safety.EntryReader` with the same bounds — decode and
resize them with `imaging`, and write the packed array and its thumbnail straight into the
pack's .npy files at row `slot` (pwritev, one call per run of rows: no page faults of a fresh
memory map in every worker), returning only small facts, hashes and the train split's sums. So
the parent never touches pixels.

Two environments shape how the pool is started:

* Celery prefork children are daemonic, and `multiprocessing` refuses to start children from a
  daemonic process (an assert in `BaseProcess.start`, whatever the start method). The rule exists
  so that a daemon killed at its parent's exit leaves no orphans. `worker_pool` lifts the flag
  only while it runs, always shuts its workers down before returning, and every worker watches
  its parent and exits when it disappears, so the rule's purpose still holds.
* The start method. Fork's two real hazards are locks held by other threads at the moment of
  the fork and a CUDA context (which does not survive it); a decode worker touches neither the
  parent's sockets nor anything else it inherits, and leaves through os._exit. So `start_method`
  forks when this process runs no other Python thread and has no CUDA context (a Celery prefork
  child, the CLI before training, a test) and spawns otherwise. A thread that marks itself
  `fork_safe` (the ingest's heartbeat, which only sleeps or runs one UPDATE on its own database
  connection, nothing a decoder touches) does not count. The difference is real: a spawned
  worker costs ~0.2 s of CPU to boot (interpreter, numpy, Pillow), which on a small upload is as
  long as the decoding itself. 'forkserver' is not used: its per-process server state breaks in
  a child forked from a process that had started one. A spawned worker must not import the
  training stack (torch takes seconds), which `workers/engine/__init__.py` may pull in: the
  worker initializer registers the parent packages as bare namespace modules first, so
  importing this module runs no package `__init__`.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np

from . import imaging
from .safety import EntryReader, close_readers
from .stats import channel_totals

EMPTY = "file is empty (0 bytes)"


@dataclass(frozen=True)
class Plan:
    """How to decode this pass; a new token means new files, so workers reopen their maps."""
    size: int
    channels: int
    resize_mode: str
    images_path: str
    images_offset: int  # where row 0 starts in the .npy file
    thumbs_path: str
    thumbs_offset: int
    thumb_size: int
    reader: EntryReader | None  # reads the entries sent by reference
    token: str
    check_gray: bool  # one channel is only a guess: report whether each image really is grayscale


class Result(NamedTuple):
    slot: int
    error: str | None  # why the entry is not in the pack (unreadable, not an image, ...), or None
    width: int = 0  # original size, EXIF orientation applied
    height: int = 0
    mode: str = ""
    format: str = ""
    gray: bool = False
    pixels: bytes = b""  # 128 bits of SHA-256 of the packed array: "the same image" for duplicates
    digest: bytes = b""  # 128 bits of SHA-256 of the file's bytes
    dhash: int = 0  # 64-bit perceptual hash for near-duplicates


class Chunk(NamedTuple):
    results: list[Result]
    pixel_sum: np.ndarray | None  # H x W x C uint32 sum of the train arrays written (None if none)
    square_sum: np.ndarray | None  # C uint64 sum of their squared values per channel


_files: dict = {}


def decode_chunk(plan: Plan, chunk: list[tuple[int, bytes | tuple, bool]]) -> Chunk:
    """Decode, write and fingerprint a chunk of (row, bytes or (ref, size), is_train); the train
    rows are also summed, so the parent gets the train split's statistics without another pass."""
    images, thumbs = _open_files(plan)
    results, written, slots, arrays, small = [], [], [], [], []
    pixel_sum = square_image = squares = None
    for slot, payload, train in chunk:
        data, reason = (payload, None) if isinstance(payload, bytes) else plan.reader.read(*payload)
        if data is None or not data:
            results.append(Result(slot, reason or EMPTY))
            continue
        result, array, thumb = _decode_one(plan, slot, data)
        results.append(result)
        if array is None:
            continue
        written.append(len(results) - 1)
        slots.append(slot)
        arrays.append(array)
        small.append(thumb)
        if not train:
            continue
        if pixel_sum is None:  # uint32 holds 255**2 times any chunk length used here
            pixel_sum = np.zeros(array.shape, dtype=np.uint32)
            square_image = np.zeros(array.shape, dtype=np.uint32)
            squares = np.empty(array.shape, dtype=np.uint16)
        np.add(pixel_sum, array, out=pixel_sum, casting="unsafe")
        np.multiply(array, array, out=squares, dtype=np.uint16)
        np.add(square_image, squares, out=square_image, casting="unsafe")
    if written:
        _write_rows(images, plan.images_offset, slots, arrays)
        _write_rows(thumbs, plan.thumbs_offset, slots, small)
        # Perceptual hashes of the whole chunk at once: microseconds per image.
        for i, value in zip(written, imaging.dhashes(np.stack(small)).tolist()):
            results[i] = results[i]._replace(dhash=value)
    square_sum = None if square_image is None else channel_totals(square_image)
    return Chunk(results, pixel_sum, square_sum)


def release() -> None:
    """Close the files this process opened (the inline path runs in the parent)."""
    for fd in (_files.pop("images", None), _files.pop("thumbs", None)):
        if fd is not None:
            os.close(fd)
    _files.clear()
    close_readers()


def _decode_one(plan: Plan, slot: int, data: bytes) -> tuple[Result, np.ndarray | None, np.ndarray | None]:
    # SHA-256 (hardware-accelerated on current CPUs) is the fastest strong hash hashlib offers here.
    digest = hashlib.sha256(data).digest()[:16]
    try:
        decoded = imaging.open_image(data, draft_size=plan.size)
        width, height = decoded.original_size
        facts = dict(width=width, height=height, mode=decoded.original_mode, format=decoded.format)
        gray = decoded.is_grayscale() if plan.check_gray else decoded.image.mode in imaging.GRAYSCALE_MODES
        if plan.check_gray and not gray:
            # The one-channel plan was wrong: no pixels written, the parent starts over in colour.
            return Result(slot, None, gray=False, digest=digest, **facts), None, None
        packed = imaging.to_image(decoded.image, size=plan.size, resize_mode=plan.resize_mode, channels=plan.channels)
        thumb = imaging.thumbnail_image(packed, size=plan.thumb_size)
        array = imaging.as_array(packed)
        small = array if thumb is packed else imaging.as_array(thumb)
    except imaging.ImageError as exc:
        return Result(slot, str(exc), digest=digest), None, None
    except Exception as exc:  # one odd file (an exotic mode, a decoder bug) must not sink the chunk
        reason = f"could not be decoded ({type(exc).__name__}: {str(exc)[:100]})"
        return Result(slot, reason, digest=digest), None, None
    pixels = hashlib.sha256(array).digest()[:16]
    return Result(slot, None, gray=gray, pixels=pixels, digest=digest, **facts), array, small


def _write_rows(fd: int, base: int, slots: list[int], rows: list[np.ndarray]) -> None:
    """Write each row at base + slot * row size: one pwritev per run of consecutive slots."""
    size = rows[0].nbytes
    start = 0
    for end in range(1, len(slots) + 1):
        if end == len(slots) or slots[end] != slots[end - 1] + 1 or end - start == 512:
            views = [memoryview(np.ascontiguousarray(r)).cast("B") for r in rows[start:end]]
            _write_all(fd, views, base + slots[start] * size)
            start = end


def _write_all(fd: int, views: list[memoryview], offset: int) -> None:
    while views:  # a write may stop short (a signal, a nearly full disk): go on from there
        written = os.pwritev(fd, views, offset)
        offset += written
        while views and written >= len(views[0]):
            written -= len(views[0])
            views = views[1:]
        if views and written:
            views[0] = views[0][written:]


def _open_files(plan: Plan) -> tuple[int, int]:
    if _files.get("token") != plan.token:
        release()
        _files.update(token=plan.token, images=os.open(plan.images_path, os.O_WRONLY),
                      thumbs=os.open(plan.thumbs_path, os.O_WRONLY))
    return _files["images"], _files["thumbs"]


class InlineExecutor:
    """The executor interface run in this process: small jobs, `processes=1`, and tests."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def start_method() -> str:
    """'fork' where it is safe (see the module docstring), else 'spawn'."""
    if sys.platform != "linux" or any(not getattr(t, "fork_safe", False) for t in threading.enumerate()
                                      if t is not threading.current_thread()):
        return "spawn"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "spawn"
    return "fork"


@contextmanager
def worker_pool(processes: int, *, method: str | None = None) -> Iterator[ProcessPoolExecutor | InlineExecutor]:
    """An executor with `processes` decode workers (in-process for 1), shut down on exit.

    `method`: 'fork' or 'spawn'; None picks with `start_method`.
    """
    if processes <= 1:
        try:
            yield InlineExecutor()
        finally:
            release()
        return
    context = multiprocessing.get_context(method or start_method())
    with _children_allowed():
        executor = ProcessPoolExecutor(max_workers=processes, mp_context=context,
                                       initializer=exec, initargs=(_bootstrap_code(), {}))
        try:
            for _ in range(processes):  # start every worker now: they boot while the parent reads
                executor.submit(int)
            yield executor
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _children_allowed() -> Iterator[None]:
    # ProcessPoolExecutor starts workers on demand from submit(), so the flag stays lifted for the
    # pool's whole life, not just its construction; it is restored on the way out.
    config = multiprocessing.current_process()._config
    daemon = config.get("daemon")
    if daemon:
        config["daemon"] = False
    try:
        yield
    finally:
        if daemon:
            config["daemon"] = daemon


# Runs with exec() in a fresh namespace as each worker's initializer (a builtin pickles by name,
# so nothing of this package has to be imported to run it).
_BOOTSTRAP = """
import os, sys, threading, time, types
for name, path in {packages!r}:
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__path__ = path
        module.__package__ = name
        sys.modules[name] = module
def watch_parent(parent=os.getppid(), getppid=os.getppid, sleep=time.sleep, leave=os._exit):
    while getppid() == parent:
        sleep(1.0)
    leave(1)
threading.Thread(target=watch_parent, name="watch-parent", daemon=True).start()
"""


def _bootstrap_code() -> str:
    """Worker start-up code: bare parent packages (see the module docstring) and a parent watch."""
    packages = []
    name = __name__.rpartition(".")[0]
    while name:
        packages.append((name, list(sys.modules[name].__path__)))
        name = name.rpartition(".")[0]
    return _BOOTSTRAP.format(packages=packages[::-1])
