"""What a run was trained with: the versions and machine that reproducing it needs.

Measured on the worker that trains the run, just before it trains (the web process may have no GPU and
other versions). The code version comes from the caller: the engine does not know where it is installed.
"""
from __future__ import annotations

import platform
import socket
from typing import Any

import torch
import torchvision

KEYS = ("python", "torch", "torchvision", "cuda", "cudnn", "gpu", "host", "code", "deterministic")


def environment(device: torch.device, *, code: str, deterministic: bool = False) -> dict[str, Any]:
    """Every key of KEYS; `cuda` and `cudnn` are None where CUDA is not available, `gpu` is "cpu" on a CPU."""
    on_gpu = device.type == "cuda"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(device) if on_gpu else "cpu",
        "host": socket.gethostname(),
        "code": code,
        "deterministic": bool(deterministic),
    }
