"""Where every stored file lives (uploads, packs, checkpoints, weights files), by a name relative to the data dir.

Rows keep those names. With the default DLSTUDIO_STORAGE_URL, `file://` + the data dir, the name is the file
itself, and a worker on another machine that mounts the same data dir finds it. With an object store
(docs/STORAGE.md), the machine that makes a file writes it under its own data dir (`absolute`) and `put`s it in
the store before any row names it; every machine reads a named file through `local`, which fetches it once into
that machine's cache. Names are generated, never taken from an upload, and each is written once.

In the store, a name is its objects (`objects/<name>`, or `objects/<name>/<file>` for a folder such as a pack)
and, written last, its manifest (`manifests/<name>.json`: each file's size and sha256). Nothing reads a name
without its manifest, so an upload that failed halfway leaves nothing a run could use.
"""
import hashlib
import json
import os
import logging
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from . import object_cache, object_store

log = logging.getLogger(__name__)


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
    here = [f"packs/{path.name}" for path in (settings.DATA_DIR / "packs").glob(f"{dataset_id}-*")]
    return sorted(set(here) | set(stored_names("packs", f"{dataset_id}-")))


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
    """Remove a stored file or folder, here and in the store; missing is fine."""
    if not relative:
        return
    drop_local(relative)
    store = _store()
    if store is not None:
        _fetched.pop(relative, None)
        manifest = _manifest(store, relative, fresh=True)
        _kept_manifest(relative).unlink(missing_ok=True)
        store.delete(_manifest_name(relative))  # first: from now on nothing reads the name
        for f in manifest["files"] if manifest else ():
            store.delete(_object_name(relative, manifest, f))


def drop_local(relative: str) -> None:
    """Remove this machine's own copy of a stored file or folder (not the cache's, not the store's)."""
    path = absolute(relative)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# --- The object store ------------------------------------------------------------------------------------------

_stores: dict = {}
_fetched: dict[str, Path] = {}  # name -> where it was found in this process (names are written once)


def _store() -> object_store.Store | None:
    """The object store of DLSTUDIO_STORAGE_URL; None when that is the data dir itself."""
    key = (settings.STORAGE_URL, str(settings.DATA_DIR), settings.AWS_ENDPOINT_URL, settings.AWS_ACCESS_KEY_ID,
           settings.AZURE_CONNECTION_STRING)
    if key not in _stores:
        _stores.clear()
        _fetched.clear()
        _stores[key] = object_store.from_settings(settings)
    return _stores[key]


def in_object_store() -> bool:
    return _store() is not None


def check_storage() -> None:
    """At start-up: CommandError with one sentence naming the setting when the configured store cannot be used
    (a wrong bucket, refused keys, nothing at the endpoint), rather than runs that fail one by one later."""
    try:
        store = _store()
        if store is not None:
            store.check()
    except object_store.StoreError as exc:
        raise CommandError(str(exc)) from None


def cache() -> object_cache.Cache:
    return object_cache.Cache(settings.DATA_DIR / "cache", int(settings.CACHE_MAX_GB * 10**9))


def _manifest_name(relative: str) -> str:
    return f"manifests/{relative}.json"


def _object_name(relative: str, manifest: dict, f: dict) -> str:
    return f"objects/{relative}" if manifest["kind"] == "file" else f"objects/{relative}/{f['path']}"


def _kept_manifest(relative: str) -> Path:
    return settings.DATA_DIR / "cache" / "manifests" / f"{hashlib.sha256(relative.encode()).hexdigest()}.json"


def _manifest(store, relative: str, *, fresh: bool = False) -> dict | None:
    """The name's manifest. A name is written once, so this machine keeps a copy of each manifest it read: a
    warm cache then costs no request to the store (`fresh`: ask the store, for a removal)."""
    kept = _kept_manifest(relative)
    if not fresh:
        try:
            return json.loads(kept.read_bytes())
        except (FileNotFoundError, ValueError):
            pass
    data = store.read(_manifest_name(relative))
    if data is None:
        kept.unlink(missing_ok=True)
        return None
    kept.parent.mkdir(parents=True, exist_ok=True)
    temporary = kept.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, kept)  # whole or absent for another process reading it
    return json.loads(data)


def _describe(path: Path) -> dict:
    if path.is_dir():
        files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        return {"kind": "dir", "files": [_entry(path / name, name) for name in files]}
    return {"kind": "file", "files": [_entry(path, path.name)]}


def _entry(path: Path, name: str) -> dict:
    return {"path": name, "size": path.stat().st_size, "sha256": object_cache.file_sha256(path)}


def put(relative: str, *, keep: bool = False) -> None:
    """Store this machine's file or folder `relative` (under the data dir) in the object store, before a row
    names it. Its local copy then moves into the cache (`keep`: stays where it is, for a writer that still
    uses it). Nothing to do with the data dir as the store."""
    store = _store()
    if store is None:
        return
    path = absolute(relative)
    manifest = _describe(path)
    sent = []
    try:
        for f in manifest["files"]:
            name = _object_name(relative, manifest, f)
            sent.append(name)  # before the upload: one that fails may leave part of it (a folder store does)
            store.upload(path / f["path"] if manifest["kind"] == "dir" else path, name)
        store.write(_manifest_name(relative), json.dumps(manifest).encode())
    except BaseException:
        for name in sent:  # no manifest was written: these would only take room
            try:
                store.delete(name)
            except Exception:
                log.warning("could not remove %s from the object store after a failed upload", name)
        raise
    if not keep:
        entry = cache().adopt(path, manifest)
        _fetched[relative] = entry if manifest["kind"] == "dir" else entry / manifest["files"][0]["path"]


def local(relative: str) -> Path:
    """A path on this machine holding the stored file or folder `relative`: the file itself with the data dir
    as the store; else this machine's own copy, or the cache's (fetched now if need be). FileNotFoundError when
    the store has no such name."""
    store = _store()
    path = absolute(relative)
    if store is None or path.exists():
        return path
    known = _fetched.get(relative)
    if known is not None and known.exists():
        return known
    manifest = _manifest(store, relative)
    if manifest is None:
        raise FileNotFoundError(f"{relative} is not in the object store")
    started = time.monotonic()

    def fill(folder: Path) -> None:
        for f in manifest["files"]:
            target = folder / f["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            store.download(_object_name(relative, manifest, f), target)

    entry, fetched = cache().entry(manifest, fill)
    if fetched:
        log.info("fetched %s from the object store: %d bytes in %.2f s", relative,
                 sum(f["size"] for f in manifest["files"]), time.monotonic() - started)
    found = entry if manifest["kind"] == "dir" else entry / manifest["files"][0]["path"]
    _fetched[relative] = found
    return found


def stored(relative: str) -> bool:
    """Whether the object store holds the name (its manifest)."""
    store = _store()
    return store is not None and store.read(_manifest_name(relative)) is not None


def size(relative: str) -> int:
    """The bytes of a stored file (this machine's copy, or as the store's manifest says)."""
    path = absolute(relative)
    store = _store()
    if store is None or path.exists():
        return path.stat().st_size
    manifest = _manifest(store, relative)
    if manifest is None:
        raise FileNotFoundError(f"{relative} is not in the object store")
    return sum(f["size"] for f in manifest["files"])


def stored_names(folder: str, prefix: str) -> list[str]:
    """The names directly in `folder` starting with `prefix` that the store holds ([] with the data dir as it)."""
    store = _store()
    if store is None:
        return []
    return [f"{folder}/{name[:-len('.json')]}" for name in store.names(f"manifests/{folder}")
            if name.startswith(prefix) and name.endswith(".json")]
