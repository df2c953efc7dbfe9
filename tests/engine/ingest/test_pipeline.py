"""build_pack end to end: layouts, splits, automatic size and colour, resize modes, the pack's
extras, progress, every bad input of issue 3 and clean failure (no stray files)."""
from __future__ import annotations

import errno
import io
import json
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engine.ingest import imaging, pipeline
from workers.engine.errors import IngestError
from workers.engine.ingest.archive import Limits
from workers.engine.errors import PackError
from workers.engine.ingest.pack import open_pack
from workers.engine.ingest.pipeline import PackOptions, PackReport, build_pack


def picture(seed: int, size=(12, 12), mode: str = "RGB") -> Image.Image:
    """A distinct, smooth picture per seed (smooth so resized copies stay recognisable)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize(size, Image.Resampling.BILINEAR)
    return img.convert(mode)


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def class_entries(classes=("cat", "dog", "eel"), per_class=12, size=(12, 12), mode="RGB", prefix="",
                  fmt="PNG", seed=0) -> dict[str, bytes]:
    entries = {}
    for c, name in enumerate(classes):
        for i in range(per_class):
            ext = "jpg" if fmt == "JPEG" else fmt.lower()
            entries[f"{prefix}{name}/{i:03d}.{ext}"] = encode(picture(seed + 1000 * c + i, size, mode), fmt)
    return entries


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def write_folder(root: Path, entries: dict[str, bytes]) -> Path:
    for name, data in entries.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def no_stray_files(out: Path) -> bool:
    return not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_a_zip_of_class_folders_becomes_a_pack_with_its_extras(tmp_path):
    entries = class_entries(prefix="holiday photos/")  # one wrapping folder is fine
    report = build_pack(write_zip(tmp_path / "up.zip", entries), tmp_path / "pack", PackOptions())
    assert isinstance(report, PackReport) and report.pack_path == tmp_path / "pack"
    assert report.classes == ["cat", "dog", "eel"]
    assert report.counts == [{"name": c, "train": 9, "val": 2, "test": 1} for c in report.classes]
    assert (report.num_images, report.image_size, report.channels) == (36, 12, 3)
    assert {"corrupt", "duplicates", "leaks", "imbalance", "warnings"} <= set(report.health)
    assert report.health["corrupt"] == [] and report.health["imbalance"] == 1.0
    assert report.original_sizes["sizes"] == [{"width": 12, "height": 12, "count": 36}]
    assert report.options["image_size"] == 12 and report.options["color"] == "rgb"
    json.dumps(report.to_dict())  # everything in the report is plain JSON for the web app

    pack = open_pack(report.pack_path)
    assert len(pack) == 36 and pack.images.shape == (36, 12, 12, 3)
    assert sorted(pack.names) == sorted(entries) and pack.original_sizes.tolist() == [[12, 12]] * 36
    assert pack.thumbs.shape == (36, 12, 12, 3) and pack.health == report.health
    for i, name in enumerate(pack.names):
        # Decode once, the same way as at inference: the packed row is load_array of the file.
        expected = imaging.load_array(entries[name], size=12, resize_mode="squash", channels=3)
        assert np.array_equal(pack.images[i], expected)
        assert pack.classes[pack.labels[i]] == name.split("/")[1]
    train = np.asarray(pack.images)[pack.splits == 0].astype(np.float64) / 255
    assert np.allclose(pack.mean, train.mean(axis=(0, 1, 2))) and np.allclose(pack.std, train.std(axis=(0, 1, 2)))
    assert np.allclose(pack.mean_image, train.mean(axis=0), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack", "up.zip"]


def test_the_split_is_stratified_and_reproducible_from_the_seed(tmp_path):
    source = write_zip(tmp_path / "up.zip", class_entries(per_class=20))
    options = PackOptions(val_fraction=0.25, test_fraction=0.15, seed=7)
    first = open_pack(build_pack(source, tmp_path / "a", options).pack_path)
    again = open_pack(build_pack(source, tmp_path / "b", options).pack_path)
    other = open_pack(build_pack(source, tmp_path / "c", PackOptions(val_fraction=0.25, test_fraction=0.15,
                                                                     seed=8)).pack_path)
    assert first.names == again.names and np.array_equal(first.splits, again.splits)
    assert not np.array_equal(first.splits, other.splits)
    for label in range(3):
        assert np.bincount(first.splits[first.labels == label], minlength=3).tolist() == [12, 5, 3]


def test_predefined_splits_are_kept(tmp_path):
    entries = {}
    for split, n in (("train", 8), ("val", 3), ("test", 2)):
        entries.update(class_entries(classes=("a", "b"), per_class=n, prefix=f"data/{split}/", seed=100 * n))
    report = build_pack(write_zip(tmp_path / "up.zip", entries), tmp_path / "pack", PackOptions(seed=3))
    assert report.counts == [{"name": c, "train": 8, "val": 3, "test": 2} for c in ("a", "b")]
    pack = open_pack(report.pack_path)
    for name, split in zip(pack.names, pack.splits):
        assert name.split("/")[1] == ("train", "val", "test")[split]


def test_train_and_test_without_val_carve_val_from_train(tmp_path):
    entries = {**class_entries(classes=("a", "b"), per_class=10, prefix="train/"),
               **class_entries(classes=("a", "b"), per_class=4, prefix="test/", seed=500)}
    report = build_pack(write_zip(tmp_path / "up.zip", entries), tmp_path / "pack", PackOptions(val_fraction=0.2))
    assert report.counts == [{"name": c, "train": 8, "val": 2, "test": 4} for c in ("a", "b")]
    pack = open_pack(report.pack_path)
    assert all(name.startswith("test/") for name in np.array(pack.names)[pack.splits == 2])


def test_train_only_draws_val_and_test_and_a_folder_source_works(tmp_path):
    root = write_folder(tmp_path / "data", class_entries(classes=("a", "b"), per_class=10, prefix="train/"))
    report = build_pack(root, tmp_path / "pack", PackOptions(val_fraction=0.2, test_fraction=0.1))
    assert report.counts == [{"name": c, "train": 7, "val": 2, "test": 1} for c in ("a", "b")]


def test_colour_auto_picks_grayscale_only_when_every_image_is(tmp_path):
    gray_as_rgb = class_entries(mode="L")
    gray_as_rgb = {k: encode(Image.open(io.BytesIO(v)).convert("RGB"), "PNG") for k, v in gray_as_rgb.items()}
    report = build_pack(write_zip(tmp_path / "g.zip", gray_as_rgb), tmp_path / "g", PackOptions())
    assert report.channels == 1 and report.options["color"] == "grayscale" and report.health["restarts"] == 0
    one_colour = {**gray_as_rgb, "eel/999.png": encode(picture(5))}  # the last one has colour
    report = build_pack(write_zip(tmp_path / "c.zip", one_colour), tmp_path / "c", PackOptions())
    assert report.channels == 3 and report.health["restarts"] == 1
    pack = open_pack(report.pack_path)
    assert pack.images.shape[-1] == 3 and pack.thumbs.shape[-1] == 3
    forced = build_pack(write_zip(tmp_path / "f.zip", one_colour), tmp_path / "f", PackOptions(color="grayscale"))
    assert forced.channels == 1
    rgb = build_pack(write_zip(tmp_path / "r.zip", gray_as_rgb), tmp_path / "r", PackOptions(color="rgb"))
    assert rgb.channels == 3


@pytest.mark.parametrize("sizes,expected", [
    ([(20, 20)], 20),  # one shared size up to 256: kept
    ([(24, 16)], 24),  # shared but not square: the larger side
    ([(300, 300)], 224),  # shared but over 256
    ([(10, 10), (14, 14)], 224),  # mixed sizes
])
def test_automatic_image_size(tmp_path, sizes, expected):
    entries = {}
    for k, size in enumerate(sizes):
        entries.update(class_entries(classes=("a", "b"), per_class=3, size=size, prefix=f"s{k}/", seed=50 * k))
    entries = {name.split("/", 1)[1].replace("/", f"/{name.split('/')[0]}-"): data for name, data in entries.items()}
    report = build_pack(write_zip(tmp_path / "up.zip", entries), tmp_path / "pack", PackOptions())
    assert report.image_size == expected
    assert open_pack(report.pack_path).images.shape[1:3] == (expected, expected)
    if len(sizes) > 1:
        assert any("different sizes" in w for w in report.health["warnings"])


def test_an_explicit_image_size_and_each_resize_mode(tmp_path):
    bands = np.zeros((10, 30, 3), dtype=np.uint8)
    bands[:, :10, 0], bands[:, 10:20, 1], bands[:, 20:, 2] = 255, 255, 255
    entries = {f"{c}/{i}.png": encode(Image.fromarray(bands)) for c in ("a", "b") for i in range(3)}
    source = write_zip(tmp_path / "up.zip", entries)
    packs = {mode: open_pack(build_pack(source, tmp_path / mode, PackOptions(image_size=9, resize_mode=mode)).pack_path)
             for mode in ("squash", "crop", "fill")}
    squash, crop, fill = (np.asarray(packs[m].images[0]) for m in ("squash", "crop", "fill"))
    assert squash.shape == (9, 9, 3) and squash[4, 1, 0] == 255 and squash[4, 7, 2] == 255
    assert (crop[:, 1:-1] == (0, 255, 0)).all()
    assert (fill[0] == 0).all() and fill[4, 1, 0] == 255
    assert packs["crop"].meta["options"]["resize_mode"] == "crop"


def test_exif_orientation_is_applied_while_packing(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = encode(picture(1, (40, 20)), "JPEG", exif=exif.tobytes())
    entries = {**class_entries(classes=("a", "b"), per_class=3, size=(20, 40), fmt="JPEG"), "a/rotated.jpg": sideways}
    report = build_pack(write_zip(tmp_path / "up.zip", entries), tmp_path / "pack", PackOptions())
    assert report.image_size == 40 and report.original_sizes["distinct"] == 1  # 20x40 once rotated
    pack = open_pack(report.pack_path)
    i = pack.names.index("a/rotated.jpg")
    assert pack.original_sizes[i].tolist() == [20, 40]
    assert np.array_equal(pack.images[i], imaging.load_array(sideways, size=40, resize_mode="squash", channels=3))


def test_progress_is_monotonic_sparse_and_reaches_one(tmp_path):
    seen = []
    build_pack(write_zip(tmp_path / "up.zip", class_entries()), tmp_path / "pack", PackOptions(),
               on_progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and all(0 <= f <= 1 for f in seen)
    assert len(seen) == len(set(seen)) and len(seen) <= 10


def bomb_png() -> bytes:
    data = bytearray(encode(Image.new("L", (10, 10))))
    data[16:24] = struct.pack(">II", 30000, 30000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_every_bad_entry_is_skipped_listed_with_a_reason_and_never_fatal(tmp_path):
    good = class_entries(classes=("cat", "dog"), per_class=12)
    jpeg = encode(picture(77, (32, 32)), "JPEG")
    bad = {
        "../../evil.png": encode(picture(500)),
        "/etc/evil2.png": encode(picture(501)),
        "cat/empty.png": b"",
        "cat/notes.txt": b"not an image",
        "dog/fake.jpg": b"text pretending to be a jpeg",
        "dog/truncated.jpg": jpeg[: len(jpeg) // 2],
        "dog/bomb.png": bomb_png(),
        "cat/zipbomb.bmp": b"\0" * (2 * 2**20),
        "__MACOSX/cat/._000.png": b"\0\0",
        "cat/.hidden.png": encode(picture(503)),
        "README.md": b"# my dataset",
        "dog/cafX.png": encode(picture(504)),  # renamed to a non-UTF-8 name below
    }
    path = write_zip(tmp_path / "up.zip", {**good, **bad})
    path.write_bytes(path.read_bytes().replace(b"dog/cafX.png", b"dog/caf\xe9.png"))
    report = build_pack(path, tmp_path / "pack", PackOptions(image_size=12))
    assert report.num_images == 24
    listed = {row["name"]: row["reason"] for row in report.health["corrupt"] + report.health["ignored"]}
    expected = set(bad) - {"dog/cafX.png"} | {"dog/caf\ufffd.png"}
    assert set(listed) == expected and all(listed.values())
    assert {row["name"] for row in report.health["ignored"]} == {"__MACOSX/cat/._000.png", "cat/.hidden.png"}
    assert "bomb" in listed["dog/bomb.png"] and "bomb" in listed["cat/zipbomb.bmp"]
    assert "empty" in listed["cat/empty.png"] and "truncated" in listed["dog/truncated.jpg"]
    assert report.health["corrupt_count"] == len(bad) - 2
    assert any("left out" in w for w in report.health["warnings"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack", "up.zip"]


def test_a_tar_with_links_is_packed_without_following_them(tmp_path):
    path = tmp_path / "up.tgz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in class_entries(classes=("a", "b"), per_class=3).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, kind in (("a/link.png", tarfile.SYMTYPE), ("a/hard.png", tarfile.LNKTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            tf.addfile(info)
    report = build_pack(path, tmp_path / "pack", PackOptions())
    assert report.num_images == 6
    assert {r["name"] for r in report.health["corrupt"]} == {"a/link.png", "a/hard.png"}


@pytest.mark.parametrize("make,words", [
    (lambda p: p.write_bytes(b"plain text") and p, "not a zip"),
    (lambda p: write_zip(p, {}), "empty"),
    (lambda p: write_zip(p, {"readme.txt": b"x", "notes/more.txt": b"y"}), "no usable images"),
    (lambda p: write_zip(p, class_entries(classes=("only",))), "single class"),
    (lambda p: write_zip(p, {**class_entries(classes=("a", "b")), "bird/0.png": encode(picture(9))}),
     "'bird' has only 1"),
    (lambda p: write_zip(p, {"a.png": encode(picture(1)), "b.png": encode(picture(2))}), "class folder"),
    (lambda p: write_zip(p, class_entries(classes=("a", "b"), prefix="val/")), "no train folder"),
])
def test_unusable_uploads_fail_with_one_sentence_and_leave_nothing(tmp_path, make, words):
    out = tmp_path / "pack"
    with pytest.raises(IngestError, match=words) as caught:
        build_pack(make(tmp_path / "up.zip"), out, PackOptions())
    message = str(caught.value)
    assert message.endswith(".") and message[0].isupper() and "\n" not in message
    assert no_stray_files(out)


def test_a_class_whose_images_are_all_unreadable_fails_after_decoding_and_cleans_up(tmp_path):
    entries = {**class_entries(classes=("a", "b"), per_class=4), "c/1.png": b"broken", "c/2.png": b"broken too"}
    out = tmp_path / "pack"
    with pytest.raises(IngestError, match=r"Class 'c' has only 0 usable images \(2 could not be read\)"):
        build_pack(write_zip(tmp_path / "up.zip", entries), out, PackOptions())
    assert no_stray_files(out)


def test_limits_exceeded_fail_cleanly(tmp_path):
    source = write_zip(tmp_path / "up.zip", class_entries())
    with pytest.raises(IngestError, match="entries"):
        build_pack(source, tmp_path / "a", PackOptions(), limits=Limits(max_entries=10))
    with pytest.raises(IngestError, match="add up to"):
        build_pack(source, tmp_path / "b", PackOptions(), limits=Limits(max_total_bytes=1000))
    with pytest.raises(IngestError, match="per-file size limit"):
        build_pack(source, tmp_path / "c", PackOptions(), limits=Limits(max_entry_bytes=10))
    assert all(no_stray_files(tmp_path / n) for n in "abc")


def test_a_failure_mid_decode_leaves_no_stray_files(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "PROGRESS_INTERVAL", 0.0)  # report every step, so one lands mid-decode
    calls = []

    def explode(fraction):
        calls.append(fraction)
        if 0.3 < fraction < 0.9:
            raise RuntimeError("the worker was told to stop")

    out = tmp_path / "pack"
    entries = class_entries(per_class=100, size=(8, 8))
    with pytest.raises(RuntimeError):
        build_pack(write_zip(tmp_path / "up.zip", entries), out, PackOptions(), on_progress=explode, processes=1)
    assert no_stray_files(out) and 0.3 < calls[-1] < 0.9


def test_an_existing_out_dir_is_never_touched(tmp_path):
    out = tmp_path / "pack"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(PackError, match="already exists"):
        build_pack(write_zip(tmp_path / "up.zip", class_entries()), out, PackOptions())
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("options,field", [
    (PackOptions(val_fraction=1.0), "val_fraction"),
    (PackOptions(val_fraction=0.6, test_fraction=0.5), "val_fraction"),
    (PackOptions(image_size=0), "image_size"),
    (PackOptions(resize_mode="stretch"), "resize_mode"),
    (PackOptions(color="sepia"), "color"),
    (PackOptions(seed=-1), "seed"),
])
def test_bad_options_name_their_field(tmp_path, options, field):
    with pytest.raises(IngestError) as caught:
        build_pack(tmp_path, tmp_path / "pack", options)
    assert caught.value.field == field


def test_a_class_without_train_images_is_warned_about(tmp_path):
    entries = {**class_entries(classes=("a", "b"), per_class=6, prefix="train/"),
               **class_entries(classes=("a", "b", "c"), per_class=3, prefix="val/", seed=900)}
    report = build_pack(write_zip(tmp_path / "up.zip", entries), tmp_path / "pack", PackOptions())
    assert report.counts[2] == {"name": "c", "train": 0, "val": 3, "test": 0}
    assert "Class 'c' has no images in the train split, so the model cannot learn it." in report.health["warnings"]


def test_a_full_disk_is_one_sentence_and_leaves_nothing(tmp_path, monkeypatch):
    from workers.engine.ingest import pool as ingest_pool

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ingest_pool.os, "pwritev", no_space)
    out = tmp_path / "pack"
    with pytest.raises(IngestError, match="^The disk is full: "):
        build_pack(write_zip(tmp_path / "up.zip", class_entries()), out, PackOptions(), processes=1)
    assert no_stray_files(out)
