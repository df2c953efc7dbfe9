"""Every bad input ends as a 4xx with {"error"}, a failed dataset with a reason, or a ready dataset
that reports what it skipped: never a 500, a hung task or a file outside the dataset's folder."""
import io
import zipfile

import pytest

from apps.datasets.models import Dataset
from apps.datasets.ingest import dataset_ingest
from tests.support.factories import class_entries, png, tar_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def ingest(client, upload, data, **kw):
    response = upload(client, data, **kw)
    assert response.status_code == 201, response.json()
    dataset_ingest(dataset_id=response.json()["id"])
    return Dataset.objects.get(pk=response.json()["id"])


def no_files_left(data_dir):
    leftovers = [p for p in data_dir.rglob("*") if p.is_file() and p.name != "secret_key"]
    return leftovers == []


def test_not_an_archive_is_a_400_and_nothing_is_kept(world, api_as, upload, data_dir):
    response = upload(api_as(world.owner), b"just some text, not an archive", filename="notes.zip")
    assert response.status_code == 400
    assert response.json()["field"] == "archive" and "zip" in response.json()["error"]
    assert Dataset.objects.count() == 0 and no_files_left(data_dir)


def test_an_empty_file_is_a_400(world, api_as, upload):
    response = upload(api_as(world.owner), b"")
    assert response.status_code == 400 and response.json()["field"] == "archive"


def test_an_image_instead_of_an_archive_is_a_400(world, api_as, upload):
    response = upload(api_as(world.owner), png(1), filename="cat.png")
    assert response.status_code == 400 and response.json()["field"] == "archive"


def test_over_the_upload_limit_is_413(world, api_as, upload, settings):
    settings.MAX_UPLOAD_MB = 1
    response = upload(api_as(world.owner), b"PK\x03\x04" + b"\0" * (2 * 2**20))
    assert response.status_code == 413 and "limit of 1 MB" in response.json()["error"]
    assert Dataset.objects.count() == 0


@pytest.mark.parametrize("entries,reason", [
    ({}, "empty"),
    ({"readme.txt": b"hello", "notes/more.txt": b"words"}, "image"),
    (class_entries(classes=("only",), per_class=5), "class"),
])
def test_unusable_archives_fail_with_a_reason_and_leave_no_files(world, api_as, upload, data_dir, entries, reason):
    dataset = ingest(api_as(world.owner), upload, zip_bytes(entries))
    assert dataset.status == "failed"
    assert reason in dataset.error.lower() and dataset.error.endswith(".")
    assert no_files_left(data_dir)


def test_a_class_with_a_single_image_fails(world, api_as, upload):
    entries = {**class_entries(classes=("cat", "dog")), "bird/0.png": png(999)}
    dataset = ingest(api_as(world.owner), upload, zip_bytes(entries))
    assert dataset.status == "failed" and "bird" in dataset.error


def test_hostile_and_broken_entries_are_skipped_and_reported(world, api_as, upload, data_dir, tmp_path):
    entries = {
        **class_entries(),
        "../../evil.png": png(500),
        "/etc/evil2.png": png(501),
        "cat/empty.png": b"",
        "cat/notes.txt": b"not an image",
        "dog/truncated.png": png(502)[:40],
        "__MACOSX/cat/._001.png": b"\0\0",
        "cat/.hidden.png": png(503),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        archive.writestr("dog/cafX.png", png(504))
    # A name in a legacy encoding (Latin-1 e-acute), not UTF-8: patched into both headers of the zip.
    data = out.getvalue().replace(b"dog/cafX.png", b"dog/caf\xe9.png")
    dataset = ingest(api_as(world.owner), upload, data)
    assert dataset.status == "ready", dataset.error
    assert dataset.num_images == 24
    reported = {c["name"] for c in dataset.health["corrupt"]}
    for name in ["cat/empty.png", "cat/notes.txt", "dog/truncated.png"]:
        assert name in reported, (name, dataset.health["corrupt"])
    assert any("evil" in name for name in reported)
    assert all(c["reason"] for c in dataset.health["corrupt"])
    # Nothing was ever written under an entry's name, here or above the data dir.
    assert not list(tmp_path.rglob("evil*")) and not list(data_dir.parent.parent.rglob("evil*.png"))


def test_a_tar_with_a_symlink_is_packed_without_following_it(world, api_as, upload):
    data = tar_bytes(class_entries(), gz=True, symlinks={"cat/link.png": "/etc/passwd"})
    dataset = ingest(api_as(world.owner), upload, data, filename="pets.tar.gz")
    assert dataset.status == "ready" and dataset.num_images == 24
    assert any(c["name"] == "cat/link.png" for c in dataset.health["corrupt"])
