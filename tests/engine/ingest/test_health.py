"""The health report on a crafted set: exact duplicates, conflicting labels, leakage removed from
the held-out split, near-duplicates across splits, imbalance, small classes, mixed sizes and modes."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engine.ingest import health as hc
from workers.engine.ingest import neardup
from workers.engine.ingest.pack import TEST, TRAIN, VAL, open_pack
from workers.engine.ingest.pipeline import PackOptions, build_pack


def picture(seed: int, size=(32, 32)) -> Image.Image:
    """Smooth and distinct per seed: resized or re-encoded copies keep their perceptual hash."""
    coarse = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BILINEAR)


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crafted")
    entries = {}
    for i in range(10):
        entries[f"train/cat/c{i}.png"] = encode(picture(i))
        entries[f"train/dog/d{i}.png"] = encode(picture(100 + i))
    for i in range(3):
        entries[f"val/cat/v{i}.png"] = encode(picture(200 + i))
        entries[f"val/dog/v{i}.png"] = encode(picture(300 + i))
        entries[f"test/cat/t{i}.png"] = encode(picture(400 + i))
        entries[f"test/dog/t{i}.png"] = encode(picture(500 + i))
    entries["train/cat/c0-copy.png"] = entries["train/cat/c0.png"]  # same file twice in a class
    entries["train/cat/c1.bmp"] = encode(picture(1), "BMP")  # same pixels, other bytes
    entries["train/dog/c2.png"] = entries["train/cat/c2.png"]  # one picture, two labels
    entries["val/cat/leak.png"] = entries["train/cat/c3.png"]  # the same image in train and val
    entries["test/dog/leak.png"] = entries["train/dog/d5.png"]  # ... and in train and test
    entries["val/dog/recoded.jpg"] = encode(picture(104), "JPEG", quality=85)  # d4, re-encoded
    source = write_zip(tmp / "up.zip", entries)
    report = build_pack(source, tmp / "pack", PackOptions(image_size=32))
    return report, open_pack(report.pack_path)


def test_exact_duplicates_count_every_repeat_within_and_across_classes(crafted):
    report, _ = crafted
    health = report.health
    # c0 twice, c1 as PNG and BMP, c2 in cat and dog, c3 in train and val, d5 in train and test.
    assert health["duplicates"] == 5
    assert health["identical_files"] == 4  # the BMP has other bytes, the same pixels
    groups = {tuple(sorted(i["name"] for i in g["images"])): g for g in health["duplicate_groups"]}
    assert set(groups) == {("train/cat/c0-copy.png", "train/cat/c0.png"), ("train/cat/c1.bmp", "train/cat/c1.png"),
                           ("train/cat/c2.png", "train/dog/c2.png"), ("train/cat/c3.png", "val/cat/leak.png"),
                           ("test/dog/leak.png", "train/dog/d5.png")}


def test_conflicting_labels_are_reported_first(crafted):
    report, _ = crafted
    assert report.health["conflicts"] == 1
    first = report.health["duplicate_groups"][0]
    assert first["conflict"] and {i["class"] for i in first["images"]} == {"cat", "dog"}
    assert any("conflicting labels" in w for w in report.health["warnings"])


def test_leaked_copies_are_removed_from_the_held_out_split_and_reported(crafted):
    report, pack = crafted
    health = report.health
    assert health["leaks"] == 2
    assert {(row["name"], row["split"], row["train_name"]) for row in health["leaked"]} == {
        ("val/cat/leak.png", "val", "train/cat/c3.png"), ("test/dog/leak.png", "test", "train/dog/d5.png")}
    assert "val/cat/leak.png" not in pack.names and "test/dog/leak.png" not in pack.names
    assert "train/cat/c3.png" in pack.names and "train/dog/d5.png" in pack.names
    assert report.counts == [{"name": "cat", "train": 12, "val": 3, "test": 3},
                             {"name": "dog", "train": 11, "val": 4, "test": 3}]
    assert report.num_images == len(pack) == 36
    assert any("removed from the held-out split" in w for w in health["warnings"])


def test_a_re_encoded_copy_in_val_is_a_near_duplicate_of_its_train_original(crafted):
    report, _ = crafted
    pairs = report.health["near_duplicate_pairs"]
    assert report.health["near_duplicates"] == len(pairs) == 1
    assert pairs[0]["name"] == "val/dog/recoded.jpg" and pairs[0]["train_name"] == "train/dog/d4.png"
    assert pairs[0]["distance"] <= neardup.NEAR_DISTANCE and pairs[0]["difference"] <= neardup.NEAR_DIFFERENCE
    assert report.health["near_duplicates_checked"] == 1.0


def test_balanced_crafted_set_has_no_imbalance_warning_but_small_class_warnings(tmp_path):
    entries = {f"big/{i}.png": encode(picture(i, (12, 12))) for i in range(30)}
    entries.update({f"small/{i}.png": encode(picture(100 + i, (12, 12))) for i in range(6)})
    report = build_pack(write_zip(tmp_path / "up.zip", entries), tmp_path / "pack", PackOptions())
    assert report.health["imbalance"] == 5.0
    assert report.health["small_classes"] == [{"name": "small", "count": 6}]
    warnings = " ".join(report.health["warnings"])
    assert "'small' has only 6 images" in warnings and "imbalanced: 'big' has 5 times" in warnings


def test_mixed_sizes_and_modes_are_warned_about(tmp_path):
    entries = {}
    for i in range(4):
        entries[f"a/{i}.png"] = encode(picture(i, (16, 16)))
        entries[f"a/g{i}.png"] = encode(picture(10 + i, (20, 12)).convert("L"))
        entries[f"b/{i}.png"] = encode(picture(20 + i, (16, 16)).convert("RGBA"))
    report = build_pack(write_zip(tmp_path / "up.zip", entries), tmp_path / "pack", PackOptions())
    health = report.health
    assert health["modes"] == {"RGB": 4, "L": 4, "RGBA": 4} and health["formats"] == {"PNG": 12}
    assert health["sizes"]["distinct"] == 2 and report.image_size == 224
    assert any("2 different sizes" in w for w in health["warnings"])
    assert any("mix colour modes" in w and "RGB" in w for w in health["warnings"])


def test_near_duplicates_are_confirmed_on_the_pictures():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 400, dtype=np.int64).astype(np.uint64)
    splits = np.array([TRAIN] * 200 + [VAL] * 100 + [TEST] * 100, dtype=np.int8)
    hashes[250] = hashes[3] ^ np.uint64(0b101)  # two bits from a train image
    thumbs = np.zeros((400, 4, 4, 1), dtype=np.uint8)
    keep = np.ones(400, dtype=bool)
    pairs, checked = neardup.near_duplicates(hashes, splits, keep, thumbs=lambda rows: thumbs[rows])
    assert checked == 1.0 and [(h, t, d) for h, t, d, _ in pairs] == [(250, 3, 2)]
    thumbs[250] = 200  # the pictures differ after all: not a near-duplicate
    assert neardup.near_duplicates(hashes, splits, keep, thumbs=lambda rows: thumbs[rows])[0] == []


def test_the_band_search_finds_exactly_what_comparing_all_pairs_finds():
    rng = np.random.default_rng(1)
    train = rng.integers(0, 2**63, 3000, dtype=np.int64).astype(np.uint64)
    held = rng.integers(0, 2**63, 1000, dtype=np.int64).astype(np.uint64)
    for i in range(0, 1000, 7):  # plant copies 0 to 5 bits away
        flips = rng.choice(64, size=i % 6, replace=False)
        held[i] = train[i] ^ np.uint64(sum(1 << int(b) for b in flips))
    by_band = neardup._band_pairs(held, np.unique(train), 4, limit=10**9)
    by_all = neardup._all_pairs(held, np.unique(train), 4)

    def as_set(found):
        return set(zip(*(a.tolist() for a in found)))

    assert as_set(by_band) == as_set(by_all) and len(as_set(by_all)) >= 100


def test_uniform_hashes_fall_back_to_all_pairs_and_sample_within_the_budget():
    hashes = np.zeros(400, dtype=np.uint64)  # flat images: every hash alike, every band collides
    splits = np.array([TRAIN] * 200 + [VAL] * 200, dtype=np.int8)
    assert neardup._band_pairs(hashes[200:], np.unique(hashes[:200]), 4, limit=100) is None
    thumbs = np.zeros((400, 4, 4, 1), dtype=np.uint8)
    keep = np.ones(400, dtype=bool)
    pairs, checked = neardup.near_duplicates(hashes, splits, keep, thumbs=lambda rows: thumbs[rows], budget=50)
    assert checked == 0.25 and len(pairs) == 50  # one unique train hash: 50 held-out images checked


def test_leaks_and_groups_on_plain_arrays():
    ids = hc.group_ids([b"a", b"b", b"a", b"c", b"b", b"a"])
    assert ids.tolist() == [0, 1, 0, 2, 1, 0]
    assert [g.tolist() for g in hc.duplicate_groups(ids)] == [[0, 2, 5], [1, 4]]
    splits = np.array([VAL, TRAIN, TRAIN, TEST, VAL, TRAIN], dtype=np.int8)
    leaked, counterpart = hc.find_leaks(ids, splits)
    assert leaked.tolist() == [True, False, False, False, True, False]
    assert counterpart[0] == 2 and counterpart[4] == 1
    assert hc.imbalance([30, 10, 20]) == 3.0


def test_size_summary_for_the_chart():
    sizes = np.array([[640, 480]] * 3 + [[480, 640]] + [[100, 50]], dtype=np.int32)
    summary = hc.size_summary(sizes)
    assert summary["count"] == 5 and summary["distinct"] == 3
    assert summary["sizes"][0] == {"width": 640, "height": 480, "count": 3}
    assert summary["width"] == {"min": 100, "median": 640, "max": 640}
