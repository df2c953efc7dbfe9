"""The parent side of the decode: read entries in order, ship chunks to the pool, collect facts.

Decode once means the target size and channel count must be known before the first pixel is
written, yet `image_size` and colour `auto` depend on every image. Rather than reading the upload
twice, the plan is guessed from the first image (its size when it is at most 256; grayscale when
it is) and checked against every result: a size that differs settles the size at 224, a colour
image settles the channels at 3, and the pass starts over with the settled plan. Each guess can
only be settled once, so there are at most two restarts; with photos of mixed sizes the first
chunk already settles it, and uniform datasets never restart.
"""
from __future__ import annotations

import concurrent.futures as cf
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import imaging
from .archive import Source
from .layout import Item
from .pack_writer import PackWriter
from .pool import EMPTY, Plan, Result, decode_chunk

AUTO_MAX_SIZE = 256  # a shared size above this (or mixed sizes) packs at DEFAULT_SIZE
DEFAULT_SIZE = 224
FIRST_CHUNK_ITEMS = 8  # small, so a wrong guess is found before much work is wasted
CHUNK_ITEMS = 64
CHUNK_BYTES = 1 * 2**20  # ~20 photos: chunks short enough to balance the cores at the end


@dataclass(frozen=True)
class Guess:
    size: int | None = None
    size_sure: bool = False
    channels: int | None = None
    channels_sure: bool = False
    first_size: tuple[int, int] | None = None


@dataclass
class Outcome:
    plan: Plan | None
    writer: PackWriter | None  # None when no image could be decoded
    results: dict[int, Result] = field(default_factory=dict)  # item index -> decoded facts
    failures: dict[int, str] = field(default_factory=dict)  # item index -> why it is not in the pack
    restarts: int = 0
    pixel_sum: np.ndarray | None = None  # packfile.pixel_sums of the train rows written
    square_sum: np.ndarray | None = None


class _Replan(Exception):
    def __init__(self, guess: Guess):
        self.guess = guess


def decode_items(*, source: Source, items: list[Item], train: np.ndarray, out_dir: Path, image_size: int | None,
                 color: str, resize_mode: str, executor, workers: int,
                 on_fraction: Callable[[float], None]) -> Outcome:
    """Decode every item into a new PackWriter at row = item index. `train` marks the rows whose
    pixels go into the returned sums (the train split's statistics)."""
    guess = Guess(size=image_size, size_sure=image_size is not None,
                  channels={"grayscale": 1, "rgb": 3}.get(color), channels_sure=color != "auto")
    restarts = 0
    while True:
        try:
            outcome = _decode_pass(source, items, train, out_dir, guess, resize_mode, executor, workers, on_fraction)
            outcome.restarts = restarts
            return outcome
        except _Replan as replan:
            guess, restarts = replan.guess, restarts + 1


def _decode_pass(source, items, train, out_dir, guess, resize_mode, executor, workers, on_fraction) -> Outcome:
    outcome = Outcome(plan=None, writer=None)
    inflight: set[cf.Future] = set()
    reader = source.reader()
    # Folders and zips: workers read the entries themselves; the parent reads only the first
    # image (to guess the plan). Tar streams: the parent reads in order and ships the bytes.
    entries = ((item.entry, None, item.entry.skip) for item in items) if reader else \
        source.read(item.entry for item in items)
    chunk: list[tuple[int, bytes | tuple, bool]] = []
    chunk_bytes, limit, done = 0, FIRST_CHUNK_ITEMS, 0

    def collect() -> None:
        nonlocal done
        finished, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
        for future in finished:
            inflight.discard(future)
            chunk_done = future.result()
            for result in chunk_done.results:
                done += 1
                if result.error:
                    outcome.failures[result.slot] = result.error
                    continue
                if not (guess.size_sure and guess.channels_sure):
                    settled = _settle(guess, result)
                    if settled != guess:
                        raise _Replan(settled)
                outcome.results[result.slot] = result
            if chunk_done.pixel_sum is not None:
                if outcome.pixel_sum is None:
                    outcome.pixel_sum = np.zeros(chunk_done.pixel_sum.shape, dtype=np.uint64)
                    outcome.square_sum = np.zeros(chunk_done.square_sum.shape, dtype=np.uint64)
                outcome.pixel_sum += chunk_done.pixel_sum
                outcome.square_sum += chunk_done.square_sum
        on_fraction(done / max(len(items), 1))

    def fail(index: int, reason: str) -> None:
        nonlocal done
        outcome.failures[index] = reason
        done += 1

    try:
        for index, (entry, data, reason) in enumerate(entries):
            if reason:
                fail(index, reason)
                continue
            if data is None and (entry.size == 0 or outcome.plan is None):
                data, reason = (b"", None) if entry.size == 0 else reader.read(entry.ref, entry.size)
                if reason:
                    fail(index, reason)
                    continue
            if data is not None and not data:
                fail(index, EMPTY)
                continue
            if outcome.plan is None:
                try:
                    guess = _first_guess(guess, data)
                except imaging.ImageError as exc:  # the workers would say the same; no plan yet
                    fail(index, str(exc))
                    continue
                outcome.plan, outcome.writer = _start(out_dir, guess, resize_mode, len(items), reader)
            chunk.append((index, data if data is not None else (entry.ref, entry.size), bool(train[index])))
            chunk_bytes += len(data) if data is not None else entry.size
            if len(chunk) >= limit or chunk_bytes >= CHUNK_BYTES:
                inflight.add(executor.submit(decode_chunk, outcome.plan, chunk))
                chunk, chunk_bytes, limit = [], 0, CHUNK_ITEMS
                while len(inflight) >= 2 * workers:
                    collect()
        if chunk:
            inflight.add(executor.submit(decode_chunk, outcome.plan, chunk))
        while inflight:
            collect()
        on_fraction(1.0)
        return outcome
    except BaseException:
        # Stop writes into the files before removing them: cancel what has not started and
        # wait for what has (a worker may still be writing a row).
        for future in inflight:
            future.cancel()
        cf.wait(inflight)
        if outcome.writer is not None:
            outcome.writer.abort()
        raise
    finally:
        if hasattr(entries, "close"):
            entries.close()


def _first_guess(guess: Guess, data: bytes) -> Guess:
    """Complete the guess from the first readable image."""
    decoded = imaging.open_image(data, draft_size=guess.size or AUTO_MAX_SIZE)
    if guess.size is None:
        first = decoded.original_size
        side = max(first)
        guess = replace(guess, first_size=first, size=side if side <= AUTO_MAX_SIZE else DEFAULT_SIZE,
                        size_sure=side > AUTO_MAX_SIZE)
    if guess.channels is None:
        gray = decoded.is_grayscale()
        guess = replace(guess, channels=1 if gray else 3, channels_sure=not gray)
    return guess


def _settle(guess: Guess, result: Result) -> Guess:
    """The guess after seeing one more image: unchanged, or settled where the image disagrees."""
    if not guess.size_sure and (result.width, result.height) != guess.first_size:
        guess = replace(guess, size=DEFAULT_SIZE, size_sure=True)
    if not guess.channels_sure and not result.gray:
        guess = replace(guess, channels=3, channels_sure=True)
    return guess


def _start(out_dir: Path, guess: Guess, resize_mode: str, count: int, reader) -> tuple[Plan, PackWriter]:
    writer = PackWriter(out_dir, count=count, image_size=guess.size, channels=guess.channels, with_thumbs=True)
    plan = Plan(size=guess.size, channels=guess.channels, resize_mode=resize_mode,
                images_path=str(writer.images_path), images_offset=writer.images.offset,
                thumbs_path=str(writer.thumbs_path), thumbs_offset=writer.thumbs.offset,
                thumb_size=writer.thumb_size, reader=reader, token=uuid.uuid4().hex,
                check_gray=not guess.channels_sure)
    return plan, writer
