"""Predictions in the web process: one Predictor per checkpoint, kept in a small LRU cache.

The cache key holds the checkpoint's modification time and size, so a checkpoint that changes is
loaded again on its next use. Inputs are hostile: every file is size-checked and decoded through the
engine's allow-listed, bomb-checked image loader before the model sees it. PyTorch is imported, through
the engine, on the first prediction: pages that never predict do not pay for it.
"""
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError

from apps.runs.selectors import best_checkpoint_path
from workers import engine

MAX_IMAGES = 64
MAX_IMAGE_BYTES = 20 * 2**20
MAX_TOP_K = 20
# Decoded pixels one request may ask for, all its images together (each image is also held to the
# engine's per-image memory budget): 64 images of 4 million pixels, about two seconds of decoding.
MAX_REQUEST_PIXELS = 256_000_000

_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()
_loading: dict = {}  # cache key -> the lock its one loading thread holds
_threads_set = False


def best_checkpoint(run) -> Path:
    path = best_checkpoint_path(run)
    if path is None or not path.is_file():
        raise ValidationError("This run has no trained weights to predict with yet; wait for it to finish.")
    return path


def predictor_for(run):
    """The run's Predictor, loaded once per process and checkpoint version."""
    path = best_checkpoint(run)
    stat = path.stat()
    key = (run.pk, str(path), stat.st_mtime_ns, stat.st_size)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        loading = _loading.setdefault(key, threading.Lock())
    # One load per checkpoint version: the web server's other threads wait for it rather than each
    # reading and building the same model at once (a cold worker's first burst of requests).
    with loading:
        with _lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
        try:
            _limit_threads()
            try:
                predictor = engine.Predictor.from_checkpoint(path, device="cpu")
            except engine.CheckpointError as exc:  # a damaged or hostile file: refused unread, never unpickled
                raise ValidationError(f"This run's checkpoint cannot be used: {str(exc).rstrip('.')}.",
                                      code="checkpoint") from None
            with _lock:
                for stale in [k for k in _cache if k[0] == run.pk]:
                    del _cache[stale]
                _cache[key] = predictor
                while len(_cache) > settings.PREDICT_CACHE_SIZE:
                    _cache.popitem(last=False)
        finally:
            with _lock:
                _loading.pop(key, None)
    return predictor


def _limit_threads() -> None:
    # One small image per request: a single intra-op thread answers fastest, and the web server's
    # own threads then share the cores instead of fighting over them.
    global _threads_set
    if not _threads_set:
        engine.set_threads(settings.PREDICT_THREADS)
        _threads_set = True


def predict(*, run, files: list, top_k: int = 5) -> tuple[list[dict], float]:
    """[{"name", "predictions"}] for uploaded files, and the milliseconds spent inferring.

    Raises ValidationError (code "image"/"images"/"top_k") with a sentence naming the bad file.
    """
    if not files:
        raise ValidationError("Send an image as `image`, or up to 64 as `images`.", code="image")
    if len(files) > MAX_IMAGES:
        raise ValidationError(f"Send at most {MAX_IMAGES} images at once, not {len(files)}.", code="images")
    if not 1 <= top_k <= MAX_TOP_K:
        raise ValidationError(f"top_k must be between 1 and {MAX_TOP_K}.", code="top_k")
    predictor = predictor_for(run)
    started = time.perf_counter()
    if len(files) > 1:
        check_request_pixels(predictor, files)
    names, arrays = zip(*(load_upload(predictor, upload) for upload in files))
    probabilities = predictor.probabilities(np.stack(arrays))
    results = [{"name": n, "predictions": predictor.top(row, top_k=top_k)} for n, row in zip(names, probabilities)]
    return results, (time.perf_counter() - started) * 1000.0


def check_request_pixels(predictor, files: list) -> None:
    """A ValidationError (code "images") when the images together would decode to more than
    MAX_REQUEST_PIXELS; read from their headers, before any is decoded."""
    total = 0
    for upload in files:
        name = _name(upload)
        if upload.size > MAX_IMAGE_BYTES:
            raise ValidationError(f"{name} is larger than {MAX_IMAGE_BYTES // 2**20} MB.", code="image")
        try:
            total += engine.image_pixels(upload, draft_size=predictor.preprocessing.image_size)
        except engine.ImageError as exc:
            raise ValidationError(f"{name}: {exc}", code="image") from None
    if total > MAX_REQUEST_PIXELS:
        raise ValidationError(
            f"These {len(files)} images hold {total / 1e6:,.0f} million pixels together, over the "
            f"{MAX_REQUEST_PIXELS / 1e6:,.0f} million one request may decode; send fewer or smaller images "
            "in each request.", code="images")


def _name(upload) -> str:
    return str(getattr(upload, "name", "") or "image")[:200]


def load_upload(predictor, upload) -> tuple[str, np.ndarray]:
    """(a printable name, the image as the model's input H x W x C uint8), or a ValidationError
    (code "image") naming the file."""
    name = _name(upload)
    if upload.size > MAX_IMAGE_BYTES:
        raise ValidationError(f"{name} is larger than {MAX_IMAGE_BYTES // 2**20} MB.", code="image")
    try:
        return name, predictor.load(upload.read())
    except engine.ImageError as exc:
        raise ValidationError(f"{name}: {exc}", code="image") from None


def clear_cache() -> None:
    with _lock:
        _cache.clear()
