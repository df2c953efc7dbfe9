"""A machine's cache of what it fetched from the object store, under its own data dir (docs/STORAGE.md).

An entry is a folder named by the content of what it holds (the sha256 of its files' names and digests, as the
object's manifest lists them), so the same content is fetched once however many rows name it, and a key whose
content changed can never be answered with the old one. An entry appears whole or not at all: it is filled in
a `.partial-*` folder, each file checked against its digest, then renamed into place. Two processes that want
the same entry take turns on its lock file (`fcntl.flock`, released by the kernel when a process dies), and the
second finds it filled. Above the size limit, the least recently used entries go, never one used in the last
minutes: a training job that memory-maps a pack keeps its pages when the files are unlinked, but one about to
open an entry it was just given must still find it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

RECENT_SECONDS = 600  # an entry used this recently is never evicted
STALE_PARTIAL_SECONDS = 3600  # a `.partial-*` folder this old belongs to a process that died while filling it


class ChecksumError(Exception):
    pass


def entry_id(manifest: dict) -> str:
    """The content's name: the sha256 of the (path, sha256) pairs of its files."""
    pairs = sorted((f["path"], f["sha256"]) for f in manifest["files"])
    return hashlib.sha256(json.dumps([manifest["kind"], pairs]).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Cache:
    def __init__(self, root: Path, max_bytes: int):
        self.root, self.max_bytes = Path(root), max_bytes

    def entry(self, manifest: dict, fill: Callable[[Path], None]) -> tuple[Path, bool]:
        """The entry folder for `manifest` and whether it had to be fetched; `fill(folder)` fetches its files."""
        key = entry_id(manifest)
        final = self.root / key
        if self._use(final):
            return final, False
        with self._locked(key):
            if self._use(final):  # filled by another process while this one waited
                return final, False
            partial = self.root / f".partial-{key[:16]}-{uuid.uuid4().hex[:8]}"
            try:
                partial.mkdir(parents=True)
                fill(partial)
                verify(partial, manifest)
                os.rename(partial, final)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)  # a full disk leaves nothing half-written behind
                raise
        self.evict(keep=key)
        return final, True

    def adopt(self, made: Path, manifest: dict) -> Path:
        """Move a file or folder this machine made (and stored) into the cache, as if fetched: no second
        download."""
        key = entry_id(manifest)
        final = self.root / key
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked(key):
            if final.exists():
                if made.is_dir():
                    shutil.rmtree(made, ignore_errors=True)
                else:
                    made.unlink(missing_ok=True)
            elif manifest["kind"] == "file":
                # An entry is a folder holding the file under its manifest name, as a fetch leaves it.
                partial = self.root / f".partial-{key[:16]}-{uuid.uuid4().hex[:8]}"
                partial.mkdir()
                os.rename(made, partial / manifest["files"][0]["path"])
                os.rename(partial, final)
            else:
                os.rename(made, final)
        self.evict(keep=key)
        return final

    def evict(self, *, keep: str = "", now: float | None = None) -> list[str]:
        """Remove least recently used entries until the cache is within its size; returns what went."""
        now = time.time() if now is None else now
        removed = []
        with self._locked("evict", wait=False) as got:
            if not got:  # another process is evicting now
                return removed
            entries = []
            for path in self.root.iterdir():
                if path.name.startswith(".partial-"):
                    try:
                        stale = now - path.stat().st_mtime > STALE_PARTIAL_SECONDS
                    except FileNotFoundError:  # another process's fill, renamed into place meanwhile
                        continue
                    if stale:
                        shutil.rmtree(path, ignore_errors=True)
                    continue
                if path.name.startswith(".") or path.name in ("locks", "manifests") or not path.is_dir():
                    continue
                entries.append((path.stat().st_mtime, path, folder_bytes(path)))
            total = sum(size for _, _, size in entries)
            for used, path, size in sorted(entries, key=lambda e: e[0]):
                if total <= self.max_bytes:
                    break
                if path.name == keep or now - used < RECENT_SECONDS:
                    continue
                # Renamed away first: a reader sees the whole entry or none.
                gone = self.root / f".partial-evicted-{uuid.uuid4().hex[:8]}"
                try:
                    os.rename(path, gone)
                except OSError:
                    continue
                shutil.rmtree(gone, ignore_errors=True)
                total -= size
                removed.append(path.name)
        return removed

    def _use(self, final: Path) -> bool:
        try:
            os.utime(final)  # its last use, for least-recently-used eviction
            return True
        except FileNotFoundError:
            return False

    @contextmanager
    def _locked(self, name: str, *, wait: bool = True):
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{name}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def verify(folder: Path, manifest: dict) -> None:
    for f in manifest["files"]:
        path = folder / f["path"]
        if path.stat().st_size != f["size"] or file_sha256(path) != f["sha256"]:
            raise ChecksumError(f"{f['path']} came from the object store damaged (its checksum does not match).")


def folder_bytes(folder: Path) -> int:
    return sum(os.lstat(os.path.join(root, name)).st_size for root, _, names in os.walk(folder) for name in names)
