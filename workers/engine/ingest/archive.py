"""Opening an upload (zip, tar, tar.gz/bz2/xz or a folder) and listing its entries safely.

Nothing here ever turns an entry's name into a filesystem path: entries are listed with their
declared sizes, checked against `Limits`, and read one at a time into bounded byte strings
(`safety`). Links, devices, `..` and absolute names, hidden files, `__MACOSX` and names that are
not UTF-8 are skipped with a reason; limits that make the whole upload unsafe raise IngestError.
"""
from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import IngestError
from .safety import (
    ABSOLUTE, BOMB, CONTROL, ENCRYPTED, HIDDEN, LINK, MACOSX, NOT_UTF8, PARENT, SPECIAL, TOO_BIG, UNREADABLE,
    Entry, EntryReader, Limits, check_name, close_readers, display_name, size_text,
)

# The reasons, errors and limits of `safety` are re-exported: callers know them by this module.
__all__ = [
    "ABSOLUTE", "BOMB", "CONTROL", "ENCRYPTED", "HIDDEN", "LINK", "MACOSX", "NOT_UTF8", "PARENT", "SPECIAL",
    "TOO_BIG", "UNREADABLE", "Entry", "EntryReader", "IngestError", "Limits", "Source", "DirSource", "ZipSource",
    "TarSource", "check_name", "display_name", "open_source", "sniff_archive",
]


class Source:
    """An opened upload: `entries` lists every regular file (skipped ones with `skip` set)."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.entries: list[Entry] = []
        self.warnings: list[str] = []
        self._count = 0
        self._declared = 0

    def reader(self) -> EntryReader | None:
        """A reader other processes can use for any entry, or None for a stream read in order."""
        return None

    def read(self, entries: Iterable[Entry]) -> Iterator[tuple[Entry, bytes | None, str | None]]:
        """Yield (entry, data, None) or (entry, None, reason) for each entry, in the order given.

        Reads stop one byte past an entry's declared size, so the listing's total holds for the
        bytes actually read; the running total is still counted as a second line of defence."""
        total = 0
        for entry in entries:
            if entry.skip:
                yield entry, None, entry.skip
                continue
            data, reason = self._read_entry(entry)
            if reason:
                yield entry, None, reason
                continue
            total += len(data)
            if total > self.limits.max_total_bytes:
                raise IngestError("The files in the archive add up to more than "
                                  f"{size_text(self.limits.max_total_bytes)}, "
                                  "over the limit; upload a smaller dataset.")
            yield entry, data, None

    def head(self, entry: Entry, limit: int) -> bytes:
        """At most the first `limit` bytes of an entry (enough for an image's header); b"" when unreadable.
        Inflates only that much of a zip member, so reading every entry's header costs little."""
        return b""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- listing helpers -------------------------------------------------------------------
    def _count_entry(self) -> None:
        self._count += 1
        if self._count > self.limits.max_entries:
            raise IngestError(f"The archive has more than {self.limits.max_entries:,} entries, over the limit; "
                              "split it into smaller archives.")

    def _add_file(self, raw_name: str, size: int, ref: Any, skip: str | None = None) -> Entry:
        parts, reason = check_name(raw_name)
        entry = Entry(name=display_name(raw_name), parts=parts, size=int(size), ref=ref, skip=skip or reason)
        if entry.skip is None and entry.size > self.limits.max_entry_bytes:
            entry.skip = TOO_BIG
        if entry.skip is None:
            self._declared += entry.size
            if self._declared > self.limits.max_total_bytes:
                raise IngestError("The files in the archive add up to more than "
                                  f"{size_text(self.limits.max_total_bytes)}, "
                                  "over the limit; upload a smaller dataset.")
        self.entries.append(entry)
        return entry

    def _check_overall_ratio(self, packed_size: int) -> None:
        limits = self.limits
        if self._declared > limits.ratio_floor_bytes and self._declared > limits.max_ratio * max(packed_size, 1):
            raise IngestError(f"The archive expands to more than {limits.max_ratio:g} times its size, "
                              "which looks like a zip bomb; upload the images without extreme compression.")

    def _read_entry(self, entry: Entry) -> tuple[bytes | None, str | None]:
        return self.reader().read(entry.ref, entry.size)


class DirSource(Source):
    """A folder on this machine (the engine CLI and `import_dataset`). Symlinks are never followed."""

    def __init__(self, root: Path, limits: Limits):
        super().__init__(limits)
        self.root = root
        self._walk(root, "")

    def _walk(self, folder: Path, prefix: str) -> None:
        with os.scandir(folder) as it:
            items = sorted(it, key=lambda e: e.name)
        for item in items:
            self._count_entry()
            name = prefix + item.name
            if item.is_symlink():
                self._add_file(name, 0, None, skip=LINK)
            elif item.is_dir(follow_symlinks=False):
                parts, reason = check_name(name)
                if reason is None:
                    self._walk(Path(item.path), name + "/")
                else:  # one line for the folder rather than one per file inside it
                    self._add_file(name + "/", 0, None, skip=reason)
            elif item.is_file(follow_symlinks=False):
                self._add_file(name, item.stat(follow_symlinks=False).st_size, item.path)
            else:
                self._add_file(name, 0, None, skip=SPECIAL)

    def reader(self) -> EntryReader:
        return EntryReader("folder", str(self.root), self.limits.max_entry_bytes)

    def head(self, entry: Entry, limit: int) -> bytes:
        try:
            with open(entry.ref, "rb") as f:
                return f.read(limit)
        except OSError:
            return b""


class ZipSource(Source):
    def __init__(self, path: Path, limits: Limits):
        super().__init__(limits)
        self.path = path
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise IngestError("The zip archive is damaged and cannot be read; create it again and re-upload.") from None
        try:
            self._list(path.stat().st_size)
        except BaseException:
            self.zf.close()
            raise

    def _list(self, packed_size: int) -> None:
        limits = self.limits
        for info in self.zf.infolist():
            self._count_entry()
            raw = _zip_name(info)
            kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
            if info.is_dir() or kind == stat.S_IFDIR:
                continue
            if kind == stat.S_IFLNK:
                self._add_file(raw, 0, None, skip=LINK)
            elif kind not in (0, stat.S_IFREG):
                self._add_file(raw, 0, None, skip=SPECIAL)
            else:
                entry = self._add_file(raw, info.file_size, info)
                big = info.file_size > limits.ratio_floor_bytes
                if entry.skip is None and big and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                    entry.skip = BOMB
                    self._declared -= entry.size
        self._check_overall_ratio(packed_size)

    def reader(self) -> EntryReader:
        return EntryReader("zip", str(self.path), self.limits.max_entry_bytes)

    def head(self, entry: Entry, limit: int) -> bytes:
        try:
            with self.zf.open(entry.ref) as f:
                return f.read(limit)
        except (OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zipfile.BadZipFile):
            return b""  # encrypted, damaged or an unknown compression: the decoder will say so

    def close(self) -> None:
        self.zf.close()
        close_readers()


class TarSource(Source):
    def __init__(self, path: Path, mode: str, limits: Limits):
        super().__init__(limits)
        try:
            self.tf = tarfile.open(path, mode, encoding="utf-8", errors="surrogateescape")
        except tarfile.ReadError as exc:
            if "empty" in str(exc):
                raise IngestError("The archive is empty; add a folder per class with images in it.") from None
            raise IngestError("The upload is not a readable zip, tar or tar.gz archive.") from None
        except (OSError, EOFError) as exc:
            raise IngestError("The archive is damaged and cannot be read; create it again and re-upload.") from exc
        try:
            self._list(path.stat().st_size)
        except BaseException:
            self.tf.close()
            raise

    def _list(self, packed_size: int) -> None:
        while True:
            try:
                member = self.tf.next()
            except Exception:  # a damaged tail (truncated gzip, bad header): keep what came before
                self.warnings.append(f"The archive is damaged after its first {self._count} entries; "
                                     "only those were read.")
                break
            if member is None:
                break
            self._count_entry()
            if member.isdir():
                continue
            if member.issym() or member.islnk():
                self._add_file(member.name, 0, None, skip=LINK)
            elif not member.isreg():
                self._add_file(member.name, 0, None, skip=SPECIAL)
            else:
                self._add_file(member.name, member.size, member)
            # Checked as the listing goes: a gzip of zeros must not be inflated to the end first.
            self._check_overall_ratio(packed_size)

    def _read_entry(self, entry: Entry) -> tuple[bytes | None, str | None]:
        cap = min(entry.size, self.limits.max_entry_bytes)
        try:
            fp = self.tf.extractfile(entry.ref)
            if fp is None:
                raise OSError("not a regular file")
            data = fp.read(cap + 1)
        except (OSError, EOFError, ValueError, tarfile.TarError):
            return None, UNREADABLE
        return (None, TOO_BIG) if len(data) > cap else (data, None)

    def head(self, entry: Entry, limit: int) -> bytes:
        try:
            fp = self.tf.extractfile(entry.ref)
            return fp.read(limit) if fp is not None else b""
        except (OSError, EOFError, ValueError, tarfile.TarError):
            return b""

    def close(self) -> None:
        self.tf.close()


def sniff_archive(path: str | os.PathLike) -> str:
    """What the upload is, by its content (never its extension): 'folder', 'zip', 'tar', 'tar.gz',
    'tar.bz2' or 'tar.xz'. Cheap (reads the first bytes and at most the first tar header), so the
    web request can refuse a wrong file at once; raises IngestError otherwise."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise IngestError("The upload was not found; upload it again.")
    if path.stat().st_size == 0:
        raise IngestError("The uploaded file is empty; upload a zip, tar or tar.gz archive of images.")
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08") or zipfile.is_zipfile(path):
        return "zip"
    for magic, kind in ((b"\x1f\x8b", "tar.gz"), (b"BZh", "tar.bz2"), (b"\xfd7zXZ\x00", "tar.xz")):
        if head.startswith(magic):
            if _tar_header_readable(path, "r:" + kind[4:]):
                return kind
            raise IngestError(f"The upload is compressed ({kind[4:]}) but holds no tar archive; "
                              "upload a zip, tar or tar.gz archive of images.")
    if head[257:262] == b"ustar" or _tar_header_readable(path, "r:"):
        return "tar"
    raise IngestError("The upload is not a zip, tar or tar.gz archive; pack the class folders into one.")


_TAR_MODES = {"tar": "r:", "tar.gz": "r:gz", "tar.bz2": "r:bz2", "tar.xz": "r:xz"}


def open_source(path: str | os.PathLike, *, limits: Limits) -> Source:
    """Open a folder or an archive (see `sniff_archive`) and list its entries within `limits`."""
    kind = sniff_archive(path)
    path = Path(path)
    if kind == "folder":
        source: Source = DirSource(path, limits)
    elif kind == "zip":
        source = ZipSource(path, limits)
    else:
        source = TarSource(path, _TAR_MODES[kind], limits)
    if not source.entries and not source._count:
        source.close()
        raise IngestError("The archive is empty; add a folder per class with images in it.")
    return source


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The entry name as UTF-8 text; bytes that are not UTF-8 become surrogate escapes."""
    if info.flag_bits & 0x800:  # the archive says the name is UTF-8 and zipfile decoded it so
        return info.filename
    raw = info.orig_filename.encode("cp437")  # zipfile's fallback decoding, undone losslessly
    return raw.decode("utf-8", "surrogateescape")


def _tar_header_readable(path: Path, mode: str) -> bool:
    """True for a tar stream, including an empty one (which open_source reports as empty)."""
    try:
        with tarfile.open(path, mode):
            return True
    except tarfile.ReadError as exc:
        return "empty" in str(exc)
    except (tarfile.TarError, OSError, EOFError):
        return False
