"""dlstudio's engine: pure PyTorch + NumPy + Pillow, never Django (docs/ARCHITECTURE.md).

Three pipelines, each a sub-package: `ingest` (an archive of labelled images -> a pack and a health
report), `train` (a pack and a config -> epochs of metrics, checkpoints, an evaluation) and `serve`
(a checkpoint -> predictions, an ONNX file); `cli` runs them from a shell. Imports go one way:
serve -> train -> ingest, each free to use `errors` and `diskspace`.

The names below are the engine's public interface, imported on first use (PEP 562): validating a
config or packing a dataset does not pay for importing PyTorch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    # errors, every one importable without torch
    **dict.fromkeys(("ConfigError", "CheckpointError", "WeightsNotFound", "IngestError", "PackError", "ImageError",
                     "ExportUnavailable"), "errors"),
    "disk_full": "diskspace",
    # ingest
    **dict.fromkeys(("build_pack", "PackOptions", "PackReport", "Limits", "sniff_archive", "COLORS",
                     "DISK_FULL_SENTENCE"), "ingest.pipeline"),
    "Pack": "ingest.pack", "open_pack": "ingest.pack",
    "derive_pack": "ingest.versions", "check_changes": "ingest.versions", "LABEL_SOURCES": "ingest.layout",
    "RESIZE_MODES": "ingest.imaging", "image_pixels": "ingest.imaging",
    **dict.fromkeys(("PackEstimate", "estimate_pack", "upscale_sentence", "size_words"), "ingest.estimate"),
    # train
    **dict.fromkeys(("ARCHITECTURES", "ARCHS", "IMAGENET_ARCHS"), "train.archs"),
    "TrainConfig": "train.config",
    "METRIC_KEYS": "train.metrics",
    "build_model": "train.models",
    "model_summary": "train.summary", "checkpoint_input": "train.summary",
    "estimate_run_bytes": "train.memory", "too_big_sentence": "train.memory",
    "fit": "train.loop", "FitResult": "train.loop", "BatchProgress": "train.loop",
    "evaluate_checkpoint": "train.evaluation",
    "lr_range_test": "train.lr_finder", "LRRangeResult": "train.lr_finder",
    "load_checkpoint": "train.checkpoint", "load_weights_file": "train.checkpoint",
    "resolve_device": "train.session",
    "environment": "train.environment",
    **dict.fromkeys(("imagenet_cache_folder", "imagenet_file_names", "load_imagenet_weights", "shown_folder"),
                    "train.transfer"),
    # serve
    "Predictor": "serve.predictor", "set_threads": "serve.predictor",
    "export_onnx": "serve.export",
    **dict.fromkeys(("overlay", "filter_grid", "top_channels", "channel_grid"), "serve.explain"),
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .diskspace import disk_full
    from .errors import (
        CheckpointError, ConfigError, ExportUnavailable, ImageError, IngestError, PackError, WeightsNotFound,
    )
    from .ingest.estimate import PackEstimate, estimate_pack, size_words, upscale_sentence
    from .ingest.imaging import RESIZE_MODES, image_pixels
    from .ingest.layout import LABEL_SOURCES
    from .ingest.pack import Pack, open_pack
    from .ingest.pipeline import (
        COLORS, DISK_FULL_SENTENCE, Limits, PackOptions, PackReport, build_pack, sniff_archive,
    )
    from .ingest.versions import check_changes, derive_pack
    from .serve.explain import channel_grid, filter_grid, overlay, top_channels
    from .serve.export import export_onnx
    from .serve.predictor import Predictor, set_threads
    from .train.archs import ARCHITECTURES, ARCHS, IMAGENET_ARCHS
    from .train.checkpoint import load_checkpoint, load_weights_file
    from .train.config import TrainConfig
    from .train.environment import environment
    from .train.evaluation import evaluate_checkpoint
    from .train.loop import BatchProgress, FitResult, fit
    from .train.lr_finder import LRRangeResult, lr_range_test
    from .train.memory import estimate_run_bytes, too_big_sentence
    from .train.metrics import METRIC_KEYS
    from .train.models import build_model
    from .train.session import resolve_device
    from .train.summary import checkpoint_input, model_summary
    from .train.transfer import imagenet_cache_folder, imagenet_file_names, load_imagenet_weights, shown_folder


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
