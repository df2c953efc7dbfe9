"""dlstudio's training engine: pure PyTorch + NumPy + Pillow, never Django (DESIGN.md).

The names below are imported on first use (PEP 562), so `import workers.engine.config` or the
packing modules do not pay for importing PyTorch, and the web process can validate a config
without it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "TrainConfig": "config", "ConfigError": "config",
    "build_model": "models",
    "fit": "loop", "FitResult": "loop", "BatchProgress": "loop", "METRIC_KEYS": "loop",
    "evaluate_checkpoint": "evaluation",
    "Predictor": "predict",
    "lr_range_test": "lr_finder", "LRRangeResult": "lr_finder",
    "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint",
    "WeightsNotFound": "transfer",
}
__all__ = [
    "BatchProgress", "CheckpointError", "ConfigError", "FitResult", "LRRangeResult", "METRIC_KEYS", "Predictor",
    "TrainConfig", "WeightsNotFound", "build_model", "evaluate_checkpoint", "fit", "load_checkpoint",
    "lr_range_test",
]

if TYPE_CHECKING:
    from .checkpoint import CheckpointError, load_checkpoint
    from .config import ConfigError, TrainConfig
    from .evaluation import evaluate_checkpoint
    from .loop import METRIC_KEYS, BatchProgress, FitResult, fit
    from .lr_finder import LRRangeResult, lr_range_test
    from .models import build_model
    from .predict import Predictor
    from .transfer import WeightsNotFound


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
