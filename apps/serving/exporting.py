"""A run's ONNX file, made once per checkpoint version and then served from the run's folder.

The exporter is not safe to run twice at once, and viewers who ask together must all get the same
whole file: one export per checkpoint across threads and web processes (an exclusive `flock` on a lock
file beside it), the others wait and are served what it wrote.
"""
import fcntl
from pathlib import Path

from workers import engine

from .predictors import best_checkpoint


def _fresh(onnx_path: Path, checkpoint: Path) -> bool:
    return onnx_path.is_file() and onnx_path.stat().st_mtime >= checkpoint.stat().st_mtime


def onnx_file(run) -> Path:
    """The run's ONNX file, exported first if it is missing or older than the checkpoint. Raises
    ValidationError (no weights yet), engine.ExportUnavailable or engine.CheckpointError."""
    checkpoint = best_checkpoint(run)
    onnx_path = checkpoint.with_name("best.onnx")
    if _fresh(onnx_path, checkpoint):
        return onnx_path
    with open(checkpoint.with_name("best.onnx.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the export fails
        if not _fresh(onnx_path, checkpoint):  # another request may have made it while this one waited
            engine.export_onnx(checkpoint, onnx_path)
    return onnx_path
