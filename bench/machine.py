"""What the benchmarks print about where and on what code they ran."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


def code_version(*paths: str) -> str:
    """The short commit, with "+uncommitted" when `paths` (below the repository) have changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", *paths], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (commit or "unknown") + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
