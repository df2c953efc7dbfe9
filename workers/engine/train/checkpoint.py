"""Checkpoint files: written atomically, read only with `torch.load(weights_only=True)`.

A checkpoint is a dict of plain containers, numbers, strings and tensors, nothing else, so the
restricted unpickler of `weights_only=True` can read it and a file carrying any other pickle
payload (a class to import, a function to call) is refused before anything in it runs.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError

FORMAT = "dlstudio-checkpoint"
VERSION = 1
LAST, BEST = "last.pt", "best.pt"


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write to a temporary file in the same directory, then rename over `path`.

    A crash mid-write leaves the previous file intact: a rename within one filesystem is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            out = _KeepWriteError(f)
            try:
                torch.save({"format": FORMAT, "version": VERSION, **state}, out)
            except Exception as exc:
                if out.error is not None and out.error is not exc:
                    raise out.error from exc  # the OSError (a full disk), not torch's account of it
                raise
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class _KeepWriteError:
    """The file `torch.save` writes to, keeping the OSError of a write that failed.

    torch's zip writer turns a failed write into `RuntimeError: [enforce fail at
    inline_container.cc] unexpected pos ...`, without the errno: a full disk would read as an
    internal error instead of "the disk is full".
    """

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data):
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self):
        try:
            self.file.flush()
        except OSError as exc:
            self.error = self.error or exc
            raise


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"checkpoint {path.name} is not plain weights (it is corrupt or carries code) and was refused unread"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"checkpoint {path.name} is not a readable PyTorch file ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a dlstudio checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path.name} is a version {state.get('version')} checkpoint; this engine reads version {VERSION}")
    return state


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A bare state dict (torchvision's `.pth` or a `.safetensors` file), loaded safely: a non-empty
    dict of names to tensors, or CheckpointError."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # noqa: PLC0415  (optional: only when such a file is given)

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise CheckpointError(
                f"weights file {path.name} is not plain weights (it is corrupt or carries code) and was refused unread"
            ) from None
        except (RuntimeError, EOFError, OSError) as exc:
            raise CheckpointError(f"weights file {path.name} is not a readable PyTorch file ({exc})") from None
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]  # a dlstudio checkpoint given as a weights file
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"weights file {path.name} is not a state dict of tensors")
    return state


# --- random number generator state -----------------------------------------------------------

def rng_state(augment_generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "augment": augment_generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], augment_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    augment_generator.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda_states)
