"""Opened packs, cached per process: a ready pack never changes, and opening one maps its files."""
from functools import lru_cache

from workers.engine.packfile import Pack, open_pack

from . import storage
from .models import Dataset


@lru_cache(maxsize=16)
def _open(absolute_path: str) -> Pack:
    return open_pack(absolute_path)


def pack_of(dataset: Dataset) -> Pack:
    if not dataset.is_ready or not dataset.pack_path:
        raise LookupError("this dataset has no pack yet")
    return _open(str(storage.absolute(dataset.pack_path)))
