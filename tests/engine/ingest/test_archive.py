"""Reading uploads safely: every hostile or broken entry is skipped with a reason, every limit
that makes the whole upload unsafe is one clear sentence, and names are never paths."""
from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engine.ingest import archive
from workers.engine.errors import IngestError
from workers.engine.ingest.archive import Limits, open_source, sniff_archive


def png(seed: int, size: int = 8) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def write_zip(path: Path, entries: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def write_tar(path: Path, entries: dict[str, bytes], *, mode: str = "w:gz", special=()) -> Path:
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in special:
            tf.addfile(info)
    return path


def listing(source) -> dict[str, str | None]:
    return {e.name: e.skip for e in source.entries}


def read_all(source) -> dict[str, bytes | str]:
    return {e.name: data if reason is None else reason for e, data, reason in source.read(source.entries)}


GOOD = {"cat/a.png": png(1), "dog/b.png": png(2)}


@pytest.mark.parametrize("name,reason", [
    ("../evil.png", archive.PARENT),
    ("cat/../../evil.png", archive.PARENT),
    ("/etc/evil.png", archive.ABSOLUTE),
    ("C:\\evil.png", archive.ABSOLUTE),
    ("cat\\..\\..\\evil.png", archive.PARENT),
    ("cat/.hidden.png", archive.HIDDEN),
    (".git/config", archive.HIDDEN),
    ("__MACOSX/cat/._a.png", archive.MACOSX),
    ("cat/a\x07.png", archive.CONTROL),
    ("cat/caf\udce9.png", archive.NOT_UTF8),
])
def test_unsafe_names_are_refused_with_a_reason(name, reason):
    assert archive.check_name(name) == ((), reason)


def test_safe_names_split_into_parts():
    assert archive.check_name("data/./cat//a.png") == (("data", "cat", "a.png"), None)
    assert archive.check_name("cat\\a.png") == (("cat", "a.png"), None)


def test_zip_slip_and_absolute_names_are_listed_as_skipped_and_never_written(tmp_path):
    path = write_zip(tmp_path / "up.zip", {**GOOD, "../../evil.png": png(3), "/tmp/evil2.png": png(4)})
    workdir = tmp_path / "work"
    workdir.mkdir()
    os.chdir(workdir)  # a relative write would land here
    with open_source(path, limits=Limits()) as source:
        seen = listing(source)
        data = read_all(source)
    assert seen == {"cat/a.png": None, "dog/b.png": None,
                    "../../evil.png": archive.PARENT, "/tmp/evil2.png": archive.ABSOLUTE}
    assert data["cat/a.png"] == GOOD["cat/a.png"]  # bytes in memory, nothing on disk
    assert list(tmp_path.rglob("evil*")) == [] and list(workdir.iterdir()) == []
    assert not Path("/tmp/evil2.png").exists()


def test_tar_links_and_devices_are_skipped(tmp_path):
    special = []
    for name, kind in (("cat/sym.png", tarfile.SYMTYPE), ("cat/hard.png", tarfile.LNKTYPE),
                       ("cat/dev", tarfile.CHRTYPE), ("cat/fifo", tarfile.FIFOTYPE)):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
        special.append(info)
    path = write_tar(tmp_path / "up.tgz", GOOD, special=special)
    with open_source(path, limits=Limits()) as source:
        assert listing(source) == {"cat/a.png": None, "dog/b.png": None, "cat/sym.png": archive.LINK,
                                   "cat/hard.png": archive.LINK, "cat/dev": archive.SPECIAL,
                                   "cat/fifo": archive.SPECIAL}


def test_zip_symlink_entries_are_skipped(tmp_path):
    path = tmp_path / "up.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in GOOD.items():
            zf.writestr(name, data)
        link = zipfile.ZipInfo("cat/link.png")
        link.create_system = 3
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    with open_source(path, limits=Limits()) as source:
        assert listing(source)["cat/link.png"] == archive.LINK


def test_non_utf8_names_are_skipped_in_zip_tar_and_folder(tmp_path):
    # zip: write an ASCII placeholder, then patch the raw name bytes (no UTF-8 flag is set).
    raw = tmp_path / "up.zip"
    write_zip(raw, {**GOOD, "dog/cafX.png": png(5)})
    raw.write_bytes(raw.read_bytes().replace(b"dog/cafX.png", b"dog/caf\xe9.png"))
    tgz = write_tar(tmp_path / "up.tgz", {**GOOD, "dog/caf\udce9.png": png(5)})
    folder = tmp_path / "folder"
    for name, data in GOOD.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    with open(os.path.join(os.fsencode(folder), b"dog", b"caf\xe9.png"), "wb") as f:
        f.write(png(5))
    for path in (raw, tgz, folder):
        with open_source(path, limits=Limits()) as source:
            skipped = {e.name: e.skip for e in source.entries if e.skip}
        assert skipped == {"dog/caf\ufffd.png": archive.NOT_UTF8}, path


def test_zip_names_in_utf8_without_the_flag_are_accepted(tmp_path):
    raw = tmp_path / "up.zip"
    write_zip(raw, {**GOOD, "dog/cafXX.png": png(5)})
    raw.write_bytes(raw.read_bytes().replace(b"dog/cafXX.png", "dog/café.png".encode()))
    with open_source(raw, limits=Limits()) as source:
        assert listing(source)["dog/café.png"] is None


def test_a_zip_bomb_entry_is_skipped_and_the_rest_is_read(tmp_path):
    path = write_zip(tmp_path / "up.zip", {**GOOD, "cat/bomb.bmp": b"\0" * (3 * 2**20)})
    with open_source(path, limits=Limits(max_ratio=100, ratio_floor_bytes=2**20)) as source:
        assert listing(source)["cat/bomb.bmp"] == archive.BOMB
        assert read_all(source)["cat/a.png"] == GOOD["cat/a.png"]


def test_an_archive_that_expands_far_beyond_its_size_is_refused(tmp_path):
    entries = {f"cat/{i}.bmp": b"\0" * 2**20 for i in range(4)}
    path = write_zip(tmp_path / "up.zip", entries)
    # Each entry is under the size from which ratios are checked, all four together are not.
    with pytest.raises(IngestError, match="zip bomb"):
        open_source(path, limits=Limits(max_ratio=500, ratio_floor_bytes=2**21)).close()
    gz = write_tar(tmp_path / "up.tgz", entries)
    with pytest.raises(IngestError, match="zip bomb"):
        open_source(gz, limits=Limits(max_ratio=100, ratio_floor_bytes=2**20)).close()


def test_too_many_entries_is_one_sentence(tmp_path):
    path = write_zip(tmp_path / "up.zip", {f"cat/{i}.png": b"x" for i in range(30)})
    with pytest.raises(IngestError, match=r"more than 20 entries") as caught:
        open_source(path, limits=Limits(max_entries=20))
    assert str(caught.value).endswith(".") and str(caught.value).count(". ") == 0


def test_too_many_bytes_in_total_is_refused(tmp_path):
    path = write_zip(tmp_path / "up.zip", {f"cat/{i}.png": png(i, size=32) for i in range(10)})
    with pytest.raises(IngestError, match="add up to more than"):
        open_source(path, limits=Limits(max_total_bytes=5000))


def test_an_entry_over_the_per_file_limit_is_skipped(tmp_path):
    path = write_zip(tmp_path / "up.zip", {**GOOD, "cat/big.png": png(9, size=64)})
    with open_source(path, limits=Limits(max_entry_bytes=2000)) as source:
        assert listing(source)["cat/big.png"] == archive.TOO_BIG


def test_a_header_that_understates_the_size_is_caught_by_counting_bytes(tmp_path):
    path = write_zip(tmp_path / "up.zip", GOOD)
    with open_source(path, limits=Limits()) as source:
        entry = next(e for e in source.entries if e.name == "cat/a.png")
        entry.size = 10  # as if the header lied: reading stops one byte past the declared size
        result = {e.name: reason for e, _, reason in source.read([entry])}
    assert result == {"cat/a.png": archive.TOO_BIG}


def test_a_folder_skips_symlinks_fifos_and_hidden_folders(tmp_path):
    root = tmp_path / "data"
    for name, data in GOOD.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "cat" / "link.png").symlink_to("/etc/passwd")
    (root / "cat" / "dirlink").symlink_to(tmp_path)
    os.mkfifo(root / "cat" / "pipe.png")
    (root / ".git").mkdir()
    (root / ".git" / "x.png").write_bytes(png(3))
    with open_source(root, limits=Limits()) as source:
        seen = listing(source)
        data = read_all(source)
    assert seen == {"cat/a.png": None, "dog/b.png": None, "cat/link.png": archive.LINK,
                    "cat/dirlink": archive.LINK, "cat/pipe.png": archive.SPECIAL, ".git/": archive.HIDDEN}
    assert data["dog/b.png"] == GOOD["dog/b.png"]


@pytest.mark.parametrize("maker,kind", [
    (lambda p: write_zip(p, GOOD), "zip"),
    (lambda p: write_tar(p, GOOD, mode="w"), "tar"),
    (lambda p: write_tar(p, GOOD, mode="w:gz"), "tar.gz"),
    (lambda p: write_tar(p, GOOD, mode="w:bz2"), "tar.bz2"),
    (lambda p: write_tar(p, GOOD, mode="w:xz"), "tar.xz"),
])
def test_archives_are_recognised_by_content_not_extension(tmp_path, maker, kind):
    path = maker(tmp_path / "upload.jpg")  # a misleading extension
    assert sniff_archive(path) == kind
    with open_source(path, limits=Limits()) as source:
        assert read_all(source) == GOOD


@pytest.mark.parametrize("content,words", [
    (b"", "empty"),
    (b"just some text, not an archive", "not a zip"),
    (png(1), "not a zip"),
    (b"\x1f\x8b" + b"\0" * 20, "zip"),
])
def test_what_is_not_an_archive_is_one_sentence_naming_zip(tmp_path, content, words):
    path = tmp_path / "upload.zip"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=words) as caught:
        sniff_archive(path)
    assert "zip" in str(caught.value) and str(caught.value).endswith(".")


def test_a_gzip_that_holds_no_tar_is_refused(tmp_path):
    import gzip

    path = tmp_path / "upload.gz"
    path.write_bytes(gzip.compress(b"hello, not a tar" * 100))
    with pytest.raises(IngestError, match="no tar"):
        sniff_archive(path)


@pytest.mark.parametrize("maker", [
    lambda p: write_zip(p, {}),
    lambda p: write_tar(p, {}, mode="w"),
    lambda p: write_tar(p, {}, mode="w:gz"),
])
def test_empty_archives_say_so(tmp_path, maker):
    with pytest.raises(IngestError, match="empty"):
        open_source(maker(tmp_path / "up"), limits=Limits())


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_a_truncated_tar_keeps_the_entries_before_the_damage(tmp_path, mode):
    entries = {f"cat/{i}.png": png(i, size=64) for i in range(6)}
    path = write_tar(tmp_path / "up.tar", entries, mode=mode)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with open_source(path, limits=Limits()) as source:
        results = [(e.name, data, reason) for e, data, reason in source.read(source.entries)]
        warnings = source.warnings
    *whole, (last_name, _, last_reason) = results
    assert len(whole) >= 2 and all(data == entries[name] for name, data, _ in whole)
    assert last_reason == archive.UNREADABLE
    assert len(warnings) == 1 and "damaged" in warnings[0]
