"""The code version recorded on every run: DLSTUDIO_CODE_VERSION, else the git commit, else unknown."""
import functools
import subprocess
from pathlib import Path

from django.conf import settings


@functools.cache
def code_version() -> str:
    if settings.CODE_VERSION:
        return settings.CODE_VERSION[:40]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip()[:40] or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
