"""The code version recorded on every run: DLSTUDIO_CODE_VERSION, else the git commit, else the
build-time version file, else unknown.

An installed copy without `.git` (a container image, a wheel, a copied folder) reads
`dlstudio/BUILD_VERSION`, which `make version-file` writes from git before the code is copied or
packaged (README, "Configuration").
"""
import functools
import subprocess
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = "dlstudio/BUILD_VERSION"


@functools.cache
def code_version() -> str:
    if settings.CODE_VERSION:
        return settings.CODE_VERSION[:40]
    return code_version_at(ROOT)


def code_version_at(root: Path) -> str:
    """The version of the code in `root`: git's when `root` is a checkout (`.git` is a folder, or a file
    in a worktree), else the first line of its version file, else "unknown"."""
    if (root / ".git").exists():
        try:
            out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root,
                                 capture_output=True, text=True, timeout=5)
            if out.stdout.strip():
                return out.stdout.strip()[:40]
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        lines = (root / VERSION_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return "unknown"
    return (lines[0].strip()[:40] if lines else "") or "unknown"
