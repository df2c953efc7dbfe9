"""The rules every upload passes: limits, entry names that are never paths, bounded reads.

Shared by the archive listing (`archive`) and the decode workers (`ingest_pool`), which read
entries of folders and zips themselves, in parallel, through `EntryReader`.
"""
from __future__ import annotations

import os
import re
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import Any

GiB, MiB = 2**30, 2**20


@dataclass(frozen=True)
class Limits:
    """What an upload may hold. Over max_entries, max_total_bytes (the files together) or
    max_ratio (the whole archive) the upload is refused; a single entry over max_entry_bytes or
    max_ratio is skipped and reported. The web app passes its own."""
    max_entries: int = 200_000
    max_total_bytes: int = 20 * GiB
    max_entry_bytes: int = 100 * MiB
    max_ratio: float = 100.0
    # Entries (and archives) smaller than this are not checked for their compression ratio: a
    # megabyte cannot exhaust anything, while a flat-coloured BMP legitimately compresses 500:1.
    ratio_floor_bytes: int = 1 * MiB


@dataclass
class Entry:
    name: str  # the entry's name as text, for people (never used as a path)
    parts: tuple[str, ...]  # its path components once found safe, () when skipped
    size: int  # declared size in bytes
    ref: Any = field(default=None, repr=False)  # how the source finds the bytes again
    skip: str | None = None  # why the entry is not used, for the health report


# Skip reasons are fixed sentences so the report can count entries per reason.
NOT_UTF8 = "name is not valid UTF-8"
CONTROL = "name contains control characters"
ABSOLUTE = "absolute path name"
PARENT = "name points outside the archive (..)"
MACOSX = "macOS metadata (__MACOSX)"
HIDDEN = "hidden file"
LINK = "link (symbolic or hard links are never followed)"
SPECIAL = "device or other special file"
TOO_BIG = "larger than the per-file size limit"
BOMB = "compression ratio too high (a zip bomb?)"
UNREADABLE = "could not be read from the archive"
ENCRYPTED = "encrypted"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")


def check_name(raw: str) -> tuple[tuple[str, ...], str | None]:
    """Split an entry name into safe components, or say why it is skipped."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes stand for bytes that were not UTF-8
        return (), NOT_UTF8
    if _CONTROL.search(raw):
        return (), CONTROL
    text = raw.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        return (), ABSOLUTE
    parts = tuple(p for p in text.split("/") if p not in ("", "."))
    if ".." in parts:
        return (), PARENT
    if "__MACOSX" in parts:
        return (), MACOSX
    joined = "/".join(parts)
    if joined.startswith(".") or "/." in joined:
        return (), HIDDEN
    return parts, None


def display_name(raw: str) -> str:
    """The name as text for the report, with undecodable bytes shown as U+FFFD."""
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True)
class EntryReader:
    """Reads entries of a random-access source (a folder or a zip) by reference, in any process.

    Picklable, so the decode workers read (and inflate) entries in parallel instead of the parent
    shipping every byte to them. A tar stream has no such reader: the parent reads it in order.
    """
    kind: str  # "folder" or "zip"
    path: str
    max_entry_bytes: int

    def read(self, ref: Any, size: int) -> tuple[bytes | None, str | None]:
        """(data, None), or (None, reason) for an entry that is over its size or unreadable."""
        cap = min(int(size), self.max_entry_bytes)
        try:
            if self.kind == "folder":
                data = _read_file(ref, cap)
            else:
                with _zip_file(self.path).open(ref) as fp:
                    data = fp.read(cap + 1)  # one byte over tells a lying header
        except (OSError, EOFError, RuntimeError, ValueError, zipfile.BadZipFile, tarfile.TarError) as exc:
            return None, ENCRYPTED if "encrypted" in str(exc) else UNREADABLE
        return (None, TOO_BIG) if len(data) > cap else (data, None)


_open_zips: dict[str, zipfile.ZipFile] = {}


def _zip_file(path: str) -> zipfile.ZipFile:
    if path not in _open_zips:
        _open_zips[path] = zipfile.ZipFile(path)
    return _open_zips[path]


def close_readers() -> None:
    """Close the zip files this process opened for EntryReader."""
    while _open_zips:
        _open_zips.popitem()[1].close()


def _read_file(path: str, cap: int) -> bytes:
    # O_NOFOLLOW and the fstat check close the gap between listing and reading: a file swapped
    # for a link or a FIFO (which would block forever) is refused, not followed. Plain os.read:
    # a buffered file object per entry costs more than the read itself.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        parts, got = [], 0
        while got <= cap:
            part = os.read(fd, cap + 1 - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
    finally:
        os.close(fd)
    return b"".join(parts)


def size_text(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"
