"""Export a trained model to ONNX for serving outside dlstudio.

The ONNX graph takes what the network takes: an N x C x H x W float32 batch already preprocessed as
the model card describes (resize, channels, normalisation); it returns N x classes logits.
"""
from __future__ import annotations

import os
import tempfile
import threading
import warnings
from pathlib import Path

import torch

from ..errors import ExportUnavailable
from .predictor import Predictor

ONNX_OPSET = 17
# torch.onnx.export keeps module-level state while it traces (GLOBALS.in_onnx_export): two exports at
# once in one process break each other.
_EXPORTING = threading.Lock()


def export_onnx(checkpoint: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write the checkpoint's network as ONNX to `out_path` (atomically) and return the path."""
    try:
        import onnx  # noqa: F401, PLC0415  (optional: only an export needs it, to serialise the graph)
    except ImportError:
        raise ExportUnavailable("ONNX export needs the onnx package; install it with pip install onnx") from None
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    p = predictor.preprocessing
    example = torch.zeros(1, p.channels, p.image_size, p.image_size)
    out_path = Path(out_path)
    # A temporary name of its own: an export never writes into another's file, and readers only ever
    # see a whole file (os.replace).
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=out_path.name + ".", suffix=".partial")
    os.close(fd)
    try:
        with _EXPORTING, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
            torch.onnx.export(predictor.model, example, tmp, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_path
