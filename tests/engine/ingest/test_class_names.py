"""Class names: NFC-normalised, so two spellings of one name are one class; a name with a
bidirectional or other control character is refused in a sentence that shows the character."""
from __future__ import annotations

import pytest

from workers.engine.errors import IngestError
from workers.engine.ingest import layout
from workers.engine.ingest.layout import class_from_file_name
from workers.engine.ingest.versions import check_changes

from .test_labels import named_images, pack

NFC, NFD = "caf\u00e9", "cafe\u0301"  # the same word on screen, two strings


def test_folders_spelled_with_composed_and_decomposed_accents_are_one_class(tmp_path):
    entries = named_images([f"{NFC}/{i}.png" for i in range(3)] + [f"{NFD}/{i}.png" for i in range(3)]
                           + [f"dog/{i}.png" for i in range(3)])
    report = pack(tmp_path, entries, "folders")
    assert report.classes == [NFC, "dog"]
    assert [c["train"] + c["val"] + c["test"] for c in report.counts] == [6, 3]
    assert any("look the same" in w and "'cafe\\u0301'" in w for w in report.health["warnings"])


def test_labels_from_file_names_and_from_labels_csv_are_normalised_too(tmp_path):
    assert class_from_file_name(f"{NFD}.0.jpg") == NFC  # not "cafe": the combining accent is part of the word
    report = pack(tmp_path / "names", named_images([f"{NFD}.{i}.png" for i in range(3)]
                                                   + [f"{NFC}.{i + 3}.png" for i in range(3)]
                                                   + [f"dog.{i}.png" for i in range(3)]), "filename")
    assert report.classes == [NFC, "dog"]
    images = named_images([f"{i}.png" for i in range(6)])
    table = "filename,label\n" + "".join(f"{i}.png,{NFD if i < 2 else NFC if i < 4 else 'dog'}\n" for i in range(6))
    report = pack(tmp_path / "csv", {**images, "labels.csv": table.encode()}, "csv")
    assert report.classes == [NFC, "dog"] and report.num_images == 6


@pytest.mark.parametrize("name,char", [("\u202egnp.tac", "U+202E"), ("cat\u2066", "U+2066"), ("d\u200fog", "U+200F"),
                                       ("be\u0007ll", "U+0007"), ("two\u2028lines", "U+2028")])
def test_a_class_name_with_a_bidi_or_control_character_is_refused_showing_it(name, char):
    with pytest.raises(IngestError) as refused:
        layout.class_name(name)
    message = str(refused.value)
    assert char in message and ascii(name) in message and "rename it" in message
    assert all(c.isprintable() for c in message)  # the sentence itself carries no control character


def test_an_archive_with_a_right_to_left_override_in_a_folder_name_is_refused(tmp_path):
    entries = named_images([f"\u202egnp.tac/{i}.png" for i in range(3)] + [f"dog/{i}.png" for i in range(3)])
    with pytest.raises(IngestError, match=r"'\\u202egnp\.tac' contains a bidirectional control \(U\+202E\)"):
        pack(tmp_path, entries, "folders")
    table = "filename,label\n" + "".join(f"{i}.png,{'cat' if i < 3 else 'dog' + chr(0x202e)}\n" for i in range(6))
    with pytest.raises(IngestError, match="U\\+202E"):
        pack(tmp_path / "csv", {**named_images([f"{i}.png" for i in range(6)]), "labels.csv": table.encode()}, "csv")


def test_relabelling_in_a_new_version_follows_the_same_rules():
    _, names = check_changes(10, [], {1: NFD, "2": " dog "})
    assert names == {1: NFC, 2: "dog"}
    with pytest.raises(IngestError, match="U\\+202E") as refused:
        check_changes(10, [], {3: "a\u202eb"})
    assert refused.value.field == "relabel"
    with pytest.raises(IngestError, match="image indices") as refused:
        check_changes(10, [], {"\u00b2": "dog"})  # a superscript two is a digit to str.isdigit, not an index
    assert refused.value.field == "relabel"
