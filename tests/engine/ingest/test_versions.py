"""Versions of a pack: added images are the only ones decoded, the parent's rows are shared by
hard link, and the content hash names the data (equal changes, equal hash)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from workers.engine.errors import IngestError
from workers.engine.ingest.pack import open_pack
from workers.engine.ingest.pipeline import PackOptions, build_pack
from workers.engine.ingest.stats import channel_stats
from workers.engine.ingest.versions import derive_pack

from .test_pipeline import encode, picture, write_zip


def archive(path, classes=("ant", "bee"), per_class=500, seed=0, prefix=""):
    entries = {f"{prefix}{name}/{seed + i}.png": encode(picture(seed + 7919 * c + i, (10, 10)))
               for c, name in enumerate(classes) for i in range(per_class)}
    return write_zip(path, entries)


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parent")
    report = build_pack(archive(folder / "a.zip"), folder / "pack", PackOptions(), processes=1)
    return open_pack(report.pack_path)


def test_adding_fifty_images_decodes_fifty_and_shares_the_rest(parent, tmp_path):
    addition = archive(tmp_path / "more.zip", per_class=25, seed=100_000)
    report = derive_pack(parent.path, tmp_path / "v2", addition=addition, options=PackOptions(seed=3))
    assert report.decoded == 50 and report.num_images == 1050
    version = open_pack(report.pack_path)
    assert len(version) == 1050 and version.classes == ["ant", "bee"]
    # The parent's pixels are not copied: the version's first segment is the parent's own file.
    assert (report.pack_path / "images.0.npy").stat().st_ino == (parent.path / "images.npy").stat().st_ino
    assert np.array_equal(version.images[np.arange(1000)], np.asarray(parent.images))
    assert np.array_equal(version.labels[:1000], parent.labels)
    assert version.health["changes"]["added"] == 50
    # The adjusted statistics are those of the version's own train split.
    mean, std, mean_image = channel_stats(np.asarray(version.images), version.indices("train"))
    assert np.allclose(version.mean, mean, atol=1e-6) and np.allclose(version.std, std, atol=1e-6)
    assert np.allclose(version.mean_image, mean_image, atol=1e-6)
    assert version.content_hash != parent.content_hash


def test_exclude_and_relabel_make_a_new_hash_and_the_same_change_the_same_hash(parent, tmp_path):
    first = derive_pack(parent.path, tmp_path / "a", exclude=[0, 5], relabel={7: "bee", "8": "wasp", 9: "wasp"})
    again = derive_pack(parent.path, tmp_path / "b", exclude=[5, 0], relabel={"9": "wasp", 8: "wasp", 7: "bee"})
    assert first.content_hash != parent.content_hash
    assert first.content_hash == again.content_hash
    version = open_pack(first.pack_path)
    assert version.classes == ["ant", "bee", "wasp"] and len(version) == 998
    assert version.names[5] == parent.names[7] and version.classes[version.labels[5]] == "bee"
    assert [c["name"] for c in first.counts] == ["ant", "bee", "wasp"]
    assert first.decoded == 0 and first.health["changes"] == {"added": 0, "excluded": 2, "relabelled": 3,
                                                              "leaks_removed": 0}
    # A pack rebuilt from the same rows, in any order, has the same hash: equal data, equal hash.
    assert open_pack(first.pack_path).content_hash == first.content_hash


def test_a_version_of_a_version_outlives_its_ancestors(parent, tmp_path):
    copy = tmp_path / "parent"
    shutil.copytree(parent.path, copy)
    second = derive_pack(copy, tmp_path / "v2", addition=archive(tmp_path / "x.zip", per_class=3, seed=200_000))
    third = derive_pack(second.pack_path, tmp_path / "v3", exclude=[0], addition=archive(
        tmp_path / "y.zip", classes=("cat", "dog"), per_class=2, seed=300_000))
    expected = np.asarray(open_pack(second.pack_path).images)[1:]
    shutil.rmtree(copy)
    shutil.rmtree(second.pack_path)
    version = open_pack(third.pack_path)
    assert len(version) == 1005 + 4 and version.classes == ["ant", "bee", "cat", "dog"]
    assert np.array_equal(np.asarray(version.images)[:1005], expected)
    assert version.meta["segments"] == 3 and version.thumbs.shape[0] == len(version)


def test_an_added_copy_of_a_train_image_in_a_held_out_split_is_left_out(parent, tmp_path):
    train_row = int(parent.indices("train")[0])
    name = parent.names[train_row]
    image = np.asarray(parent.images[train_row])
    entries = {f"test/{parent.classes[parent.labels[train_row]]}/copy.png": encode(Image.fromarray(image)),
               "train/ant/new.png": encode(picture(424_242, (10, 10)))}
    report = derive_pack(parent.path, tmp_path / "v", addition=write_zip(tmp_path / "leak.zip", entries))
    assert report.num_images == 1001 and report.health["changes"]["leaks_removed"] == 1
    assert report.health["leaked"][0]["train_name"] == name


@pytest.mark.parametrize("changes, words", [
    ({}, "needs a change"),
    ({"exclude": [1000]}, "names image 1000"),
    ({"relabel": {3: ""}}, "not a class name"),
    ({"relabel": {"x": "ant"}}, "must be image indices"),
    ({"exclude": [1.5]}, "whole numbers"),
    ({"exclude": list(range(499))}, "Class 'ant' would have only 1 image"),
])
def test_a_change_no_version_can_be_made_of_is_one_sentence_and_leaves_nothing(parent, tmp_path, changes, words):
    with pytest.raises(IngestError, match=words):
        derive_pack(parent.path, tmp_path / "v", **changes)
    assert list(tmp_path.iterdir()) == []


def test_a_row_both_excluded_and_relabelled_is_excluded_and_no_other_row_changes(parent, tmp_path):
    version = open_pack(derive_pack(parent.path, tmp_path / "v", exclude=[7], relabel={7: "wasp"}).pack_path)
    assert len(version) == 999 and version.classes == ["ant", "bee"]
    assert np.array_equal(version.labels, np.delete(parent.labels, 7))


def test_the_content_hash_ignores_row_and_class_order_but_not_a_label():
    from workers.engine.ingest.pack import content_hash

    hashes = np.arange(48, dtype=np.uint8).reshape(3, 16)
    base = content_hash(hashes, np.array([0, 1, 1]), np.array([0, 0, 1]), ["a", "b"])
    assert content_hash(hashes[::-1], np.array([1, 1, 0]), np.array([1, 0, 0]), ["a", "b"]) == base
    assert content_hash(hashes, np.array([1, 0, 0]), np.array([0, 0, 1]), ["b", "a"]) == base
    assert content_hash(hashes, np.array([0, 1, 0]), np.array([0, 0, 1]), ["a", "b"]) != base
    assert content_hash(hashes, np.array([0, 1, 1]), np.array([0, 0, 1]), ["a", "c"]) != base
