"""Label sources: class folders, file names (Dogs vs Cats) and labels.csv (filename,label or one-hot),
with every malformed row listed and nothing guessed."""
from __future__ import annotations

import pytest

from workers.engine.errors import IngestError
from workers.engine.ingest.layout import class_from_file_name
from workers.engine.ingest.pipeline import PackOptions, build_pack

from .test_pipeline import encode, picture, write_zip


def named_images(names: list[str], seed: int = 0) -> dict[str, bytes]:
    return {name: encode(picture(seed + i), "JPEG" if name.endswith(".jpg") else "PNG")
            for i, name in enumerate(names)}


def pack(tmp_path, entries: dict[str, bytes], labels: str, **options):
    tmp_path.mkdir(parents=True, exist_ok=True)
    archive = write_zip(tmp_path / "upload.zip", entries)
    return build_pack(archive, tmp_path / "pack", PackOptions(labels=labels, **options), processes=1)


def dogs_vs_cats(prefix: str = "", n: int = 6) -> dict[str, bytes]:
    return named_images([f"{prefix}{kind}.{i}.jpg" for kind in ("cat", "dog") for i in range(n)])


@pytest.mark.parametrize("prefix", ["", "train/"])
def test_a_dogs_vs_cats_archive_takes_its_classes_from_the_file_names(tmp_path, prefix):
    report = pack(tmp_path, dogs_vs_cats(prefix), "filename")
    assert report.classes == ["cat", "dog"]
    assert [c["train"] + c["val"] + c["test"] for c in report.counts] == [6, 6]
    assert report.options["labels"] == "filename" and report.health["labels"] == "filename"


def test_file_names_that_name_no_class_are_skipped_with_a_reason(tmp_path):
    entries = {**dogs_vs_cats("train/"), **named_images(["test1/1.jpg", "test1/2.jpg"], seed=50)}
    report = pack(tmp_path, entries, "filename")
    assert report.num_images == 12
    assert {r["name"] for r in report.health["corrupt"]} == {"test1/1.jpg", "test1/2.jpg"}


@pytest.mark.parametrize("name, expected", [("cat.0.jpg", "cat"), ("Golden_retriever-3.png", "Golden"),
                                            ("dog12.png", "dog"), ("12.png", None), ("_x.png", None)])
def test_the_class_is_the_file_names_leading_letters(name, expected):
    assert class_from_file_name(name) == expected


def test_a_filename_label_csv_labels_the_images_with_or_without_a_header(tmp_path):
    names = [f"img/{i}.png" for i in range(8)]
    rows = "\n".join(f"{n.split('/')[1]},{'ant' if i < 4 else 'bee'}" for i, n in enumerate(names))
    for i, header in enumerate(("", "file,species\n")):
        entries = {**named_images(names), "labels.csv": (header + rows).encode()}
        report = pack(tmp_path / str(i), entries, "csv")
        assert report.classes == ["ant", "bee"] and report.num_images == 8
        assert report.health["label_problems"] == []


def test_a_one_hot_csv_labels_the_images(tmp_path):
    names = [f"{i}.png" for i in range(9)]
    lines = ["filename,red,green,blue"] + [f"{n},{int(i % 3 == 0)},{int(i % 3 == 1)},{int(i % 3 == 2)}"
                                           for i, n in enumerate(names)]
    report = pack(tmp_path, {**named_images(names), "labels.csv": "\n".join(lines).encode()}, "csv")
    assert report.classes == ["blue", "green", "red"]
    assert [c["train"] + c["val"] + c["test"] for c in report.counts] == [3, 3, 3]


def test_every_malformed_row_is_listed_and_its_image_left_out(tmp_path):
    names = [f"{i}.png" for i in range(12)]
    good = [f"{n},{int(i % 2 == 0)},{int(i % 2 == 1)}" for i, n in enumerate(names[:8])]
    bad = ["8.png,0,0", "9.png,1,1", "10.png,1,maybe", "ghost.png,1,0", "0.png,1,0", "1.png,1,0"]
    csv_text = "\n".join(["filename,even,odd", *good, *bad])
    report = pack(tmp_path, {**named_images(names), "labels.csv": csv_text.encode()}, "csv", val_fraction=0.0,
                  test_fraction=0.0)
    reasons = {p["name"]: p["reason"] for p in report.health["label_problems"]}
    assert reasons["8.png"] == "has no label"
    assert reasons["9.png"].startswith("has more than one label")
    assert reasons["10.png"] == "has a value that is not 0 or 1"
    assert reasons["ghost.png"] == "names no image in the archive"
    assert reasons["0.png"].startswith("lists an image again")
    assert reasons["1.png"].startswith("gives an image a second, different label")
    assert report.health["label_problems_count"] == 6
    # 8, 9, 10 have no usable row, 11 has none, 1 has two that disagree: none of them is guessed.
    left_out = {r["name"] for r in report.health["corrupt"]}
    assert left_out == {"1.png", "8.png", "9.png", "10.png", "11.png"}
    assert report.num_images == 7
    assert any("labels.csv" in w for w in report.health["warnings"])


def test_rows_may_name_an_image_by_its_path_or_by_its_bare_name(tmp_path):
    names = ["a/x1.png", "a/x2.png", "b/x1.png", "b/y2.png"]
    csv_text = "a/x1.png,p\na/x2.png,p\nb/x1.png,q\ny2.png,q\nx1.png,q"
    report = pack(tmp_path, {**named_images(names), "labels.csv": csv_text.encode()}, "csv")
    assert report.num_images == 4
    assert [p["reason"] for p in report.health["label_problems"]] == [
        "names a file several images share; give its path"]


def test_an_archive_that_mixes_layouts_is_refused_in_one_sentence(tmp_path):
    entries = {**named_images(["cat/1.png", "cat/2.png", "dog/1.png", "dog/2.png"]),
               **named_images(["cat.9.png", "dog.9.png"], seed=20)}
    with pytest.raises(IngestError, match=r"^The archive mixes layouts: 4 images are inside folders and 2 lie at "
                                          r"the top \(such as '.*'\); .*\.$"):
        pack(tmp_path, entries, "folders")
    with pytest.raises(IngestError, match="mixes layouts"):
        pack(tmp_path, entries, "filename")


def test_auto_finds_the_label_source_from_the_listing(tmp_path):
    assert pack(tmp_path / "f", named_images(["cat/1.png", "cat/2.png", "dog/1.png", "dog/2.png"]),
                "auto").options["labels"] == "folders"
    assert pack(tmp_path / "n", dogs_vs_cats(), "auto").options["labels"] == "filename"
    entries = {**named_images(["1.png", "2.png", "3.png", "4.png"]),
               "labels.csv": b"1.png,a\n2.png,a\n3.png,b\n4.png,b"}
    assert pack(tmp_path / "c", entries, "auto").options["labels"] == "csv"


def test_an_unknown_label_source_names_its_field(tmp_path):
    with pytest.raises(IngestError) as caught:
        pack(tmp_path, dogs_vs_cats(), "guess")
    assert caught.value.field == "labels"


def test_a_csv_source_without_a_label_file_says_what_to_add(tmp_path):
    with pytest.raises(IngestError, match="has no labels.csv"):
        pack(tmp_path, dogs_vs_cats(), "csv")
