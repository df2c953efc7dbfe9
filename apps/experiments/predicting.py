"""Predictions in the web process: one Predictor per checkpoint, kept in a small LRU cache.

The cache key holds the checkpoint's modification time and size, so a checkpoint that changes is
loaded again on its next use. Inputs are hostile: every file is size-checked and decoded through the
engine's allow-listed, bomb-checked image loader before the model sees it.
"""
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from django.core.exceptions import ValidationError

from apps.datasets import storage

from .models import Run

CACHE_SIZE = int(os.environ.get("DLSTUDIO_PREDICT_CACHE", "8"))
MAX_IMAGES = 64
MAX_IMAGE_BYTES = 20 * 2**20
MAX_TOP_K = 20

_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()
_loading: dict = {}  # cache key -> the lock its one loading thread holds
_threads_set = False


def best_checkpoint(run: Run) -> Path:
    path = storage.absolute(run.checkpoint_dir) / "best.pt" if run.checkpoint_dir else None
    if path is None or not path.is_file():
        raise ValidationError("This run has no trained weights to predict with yet; wait for it to finish.")
    return path


def predictor_for(run: Run):
    """The run's Predictor, loaded once per process and checkpoint version."""
    from workers.engine import CheckpointError, Predictor

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
                predictor = Predictor.from_checkpoint(path, device="cpu")
            except CheckpointError as exc:  # a damaged or hostile file: refused unread, never unpickled
                raise ValidationError(f"This run's checkpoint cannot be used: {str(exc).rstrip('.')}.",
                                      code="checkpoint") from None
            with _lock:
                for stale in [k for k in _cache if k[0] == run.pk]:
                    del _cache[stale]
                _cache[key] = predictor
                while len(_cache) > CACHE_SIZE:
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
        import torch

        torch.set_num_threads(int(os.environ.get("DLSTUDIO_PREDICT_THREADS", "1")))
        _threads_set = True


def predict(*, run: Run, files: list, top_k: int = 5) -> tuple[list[dict], float]:
    """[{"name", "predictions"}] for uploaded files, and the milliseconds spent inferring.

    Raises ValidationError (code "image"/"images"/"top_k") with a sentence naming the bad file.
    """
    from workers.engine.imaging import ImageError

    if not files:
        raise ValidationError("Send an image as `image`, or up to 64 as `images`.", code="image")
    if len(files) > MAX_IMAGES:
        raise ValidationError(f"Send at most {MAX_IMAGES} images at once, not {len(files)}.", code="images")
    if not 1 <= top_k <= MAX_TOP_K:
        raise ValidationError(f"top_k must be between 1 and {MAX_TOP_K}.", code="top_k")
    predictor = predictor_for(run)
    started = time.perf_counter()
    arrays, names = [], []
    for upload in files:
        name = str(getattr(upload, "name", "") or "image")[:200]
        if upload.size > MAX_IMAGE_BYTES:
            raise ValidationError(f"{name} is larger than {MAX_IMAGE_BYTES // 2**20} MB.", code="image")
        try:
            arrays.append(predictor.load(upload.read()))
        except ImageError as exc:
            raise ValidationError(f"{name}: {exc}", code="image") from None
        names.append(name)
    import numpy as np

    probabilities = predictor.probabilities(np.stack(arrays))
    results = [{"name": n, "predictions": predictor.top(row, top_k=top_k)} for n, row in zip(names, probabilities)]
    return results, (time.perf_counter() - started) * 1000.0


def clear_cache() -> None:
    with _lock:
        _cache.clear()
