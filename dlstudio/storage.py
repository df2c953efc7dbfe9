"""Where every stored file lives (uploads, packs, checkpoints, weights files): under
DLSTUDIO_DATA_DIR, the storage every machine shares.

Rows keep paths relative to the data dir, so a worker on another machine that mounts the same
storage elsewhere finds the same files. Names are generated, never taken from an upload.
"""
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings


def absolute(relative: str) -> Path:
    path = (settings.DATA_DIR / relative).resolve()
    if settings.DATA_DIR.resolve() not in path.parents:
        raise ValueError("a stored path must stay inside the data dir")
    return path


def relative(path) -> str:
    """What a row stores for a file under the data dir."""
    return str(Path(path).resolve().relative_to(settings.DATA_DIR.resolve()))


def new_upload_path() -> str:
    (settings.DATA_DIR / "uploads").mkdir(parents=True, exist_ok=True)
    return f"uploads/{uuid.uuid4().hex}.upload"


def new_pack_path(dataset_id: int) -> str:
    (settings.DATA_DIR / "packs").mkdir(parents=True, exist_ok=True)
    return f"packs/{dataset_id}-{uuid.uuid4().hex[:8]}"


def new_checkpoint_dir(run_id: int) -> str:
    # Unique, not just the id: a leftover folder (a restored or reset database) is never resumed from.
    return f"runs/{run_id}-{uuid.uuid4().hex[:8]}"


def new_weights_path() -> str:
    """A weights upload while it is checked; renamed to its format's suffix once it passes."""
    (settings.DATA_DIR / "weights").mkdir(parents=True, exist_ok=True)
    return f"weights/{uuid.uuid4().hex}.part"


def packs_of(dataset_id: int) -> list[str]:
    """Every pack folder made for a dataset, finished or `.partial` (one per ingest attempt)."""
    return [f"packs/{path.name}" for path in (settings.DATA_DIR / "packs").glob(f"{dataset_id}-*")]


def unchanged_for(folder: str, seconds: float, pattern: str = "*", *, now: float | None = None) -> list[str]:
    """The files under `folder` matching `pattern` that nothing has written to for `seconds`: what a sweep of
    leftovers may remove (a file being written is younger than that)."""
    now = time.time() if now is None else now
    found = []
    for path in (settings.DATA_DIR / folder).rglob(pattern):
        try:
            if path.is_file() and now - path.stat().st_mtime > seconds:
                found.append(str(path.relative_to(settings.DATA_DIR)))
        except FileNotFoundError:  # removed meanwhile
            continue
    return found


def remove(relative: str) -> None:
    """Remove a stored file or folder; missing is fine."""
    if not relative:
        return
    path = absolute(relative)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
