"""Label sources through the API, and versions: made by adding, excluding and relabelling, only the
added images decoded, named by a content hash that runs record."""
import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.ingest import dataset_ingest
from apps.datasets.models import Dataset
from apps.runs.services import run_start
from dlstudio import storage
from workers.engine import open_pack
from tests.support.factories import class_entries, make_experiment, png, zip_bytes

pytestmark = pytest.mark.django_db


def ingested(response) -> Dataset:
    assert response.status_code == 201, response.json()
    dataset_ingest(dataset_id=response.json()["id"])
    return Dataset.objects.get(pk=response.json()["id"])


def new_version(client, dataset, *, archive: bytes | None = None, **changes):
    if archive is None:
        return client.post(f"/api/datasets/{dataset.pk}/versions", changes, format="json")
    payload = {"archive": SimpleUploadedFile("more.zip", archive),
               **{k: json.dumps(v) if not isinstance(v, str) else v for k, v in changes.items()}}
    return client.post(f"/api/datasets/{dataset.pk}/versions", payload, format="multipart")


def dogs_vs_cats(n=6, prefix="train/"):
    return {f"{prefix}{kind}.{i}.jpg": png(100 * k + i) for k, kind in enumerate(("cat", "dog")) for i in range(n)}


def test_a_dogs_vs_cats_archive_uploads_with_labels_from_file_names(world, api_as, upload):
    dataset = ingested(upload(api_as(world.owner), zip_bytes(dogs_vs_cats()), team=world.team.slug,
                              labels="filename"))
    assert dataset.status == "ready", dataset.error
    assert [c.name for c in dataset.classes.all()] == ["cat", "dog"]
    body = api_as(world.viewer).get(f"/api/datasets/{dataset.pk}").json()
    assert body["version"] == 1 and body["parent"] is None and len(body["content_hash"]) == 64


def test_the_same_archive_by_folders_fails_with_one_sentence(world, api_as, upload):
    dataset = ingested(upload(api_as(world.owner), zip_bytes(dogs_vs_cats(prefix="")), team=world.team.slug))
    assert dataset.status == "failed" and "take the labels from the file names" in dataset.error


def test_a_label_source_that_is_not_one_names_its_field(world, api_as, upload):
    response = upload(api_as(world.owner), zip_bytes(dogs_vs_cats()), team=world.team.slug, labels="guess")
    assert response.status_code == 400 and response.json()["field"] == "labels"


@pytest.fixture
def thousand(world, api_as, upload):
    """A ready version 1 of 1,000 images (two classes of 500, 8x8 RGB)."""
    entries = class_entries(per_class=500, size=(8, 8))
    return ingested(upload(api_as(world.owner), zip_bytes(entries), team=world.team.slug, name="Thousand"))


def test_adding_fifty_images_decodes_fifty_and_makes_a_version_of_1050(world, api_as, thousand):
    more = {f"{kind}/new{i}.png": png(900_000 + 100 * k + i, size=(8, 8))
            for k, kind in enumerate(("cat", "dog")) for i in range(25)}
    response = new_version(api_as(world.editor), thousand, archive=zip_bytes(more))
    assert response.status_code == 201 and response.json()["version"] == 2
    version = ingested(response)
    assert version.status == "ready", version.error
    assert version.health["decoded"] == 50 and version.num_images == 1050
    assert version.parent_id == thousand.pk and version.root_id == thousand.pk and version.name == "Thousand"
    assert version.images.count() == 1050 and version.content_hash != thousand.content_hash
    assert not storage.absolute(version.pack_path).joinpath("images.npy").exists()  # shared, not copied


def test_exclude_and_relabel_make_a_new_hash_and_the_same_change_the_same_hash(world, api_as, thousand):
    client = api_as(world.editor)
    change = {"exclude": [0, 1], "relabel": {"2": "dog", "600": "cat"}}
    first = ingested(new_version(client, thousand, **change))
    again = ingested(new_version(client, thousand, **change))
    assert first.status == again.status == "ready"
    assert (first.version, again.version) == (2, 3)
    assert first.content_hash != thousand.content_hash and first.content_hash == again.content_hash
    assert first.num_images == 998 and first.health["decoded"] == 0
    moved = first.images.get(name=thousand.images.get(index=2).name)
    assert first.classes.get(index=moved.label).name == "dog"
    # A version of a version numbers on in the same family.
    third = ingested(new_version(client, first, relabel={"0": "cat"}))
    assert third.version == 4 and third.root_id == thousand.pk and third.parent_id == first.pk


def test_a_run_records_the_hash_of_the_version_it_trained_on(world, api_as, thousand):
    version = ingested(new_version(api_as(world.editor), thousand, exclude=[5]))
    experiment = make_experiment(world.team, world.owner, version)
    run = run_start(experiment=experiment, user=world.owner)
    assert run.dataset_hash == version.content_hash
    assert api_as(world.viewer).get(f"/api/runs/{run.pk}").json()["dataset_hash"] == version.content_hash


@pytest.mark.parametrize("change, field, words", [
    ({}, "archive", "needs a change"),
    ({"exclude": [1000]}, "exclude", "images 0 to 999"),
    ({"exclude": "3"}, "exclude", "list of image indices"),
    ({"exclude": {"a": 1}}, "exclude", "list of image indices"),
    ({"relabel": [1, 2]}, "relabel", "map image indices to class names"),
    ({"relabel": {"5": ""}}, "relabel", "not a class name"),
    ({"relabel": {"x": "cat"}}, "relabel", "'x' is not"),
])
def test_a_change_no_version_can_be_made_of_is_a_400_naming_its_field(world, api_as, thousand, change, field, words):
    response = new_version(api_as(world.editor), thousand, **change)
    assert response.status_code == 400 and response.json()["field"] == field and words in response.json()["error"]
    assert Dataset.objects.count() == 1


def test_a_version_that_is_not_an_archive_leaves_nothing(world, api_as, thousand, data_dir):
    response = new_version(api_as(world.editor), thousand, archive=b"not an archive")
    assert response.status_code == 400 and response.json()["field"] == "archive"
    assert Dataset.objects.count() == 1 and not any((data_dir / "uploads").iterdir())


def test_viewers_cannot_make_versions_and_outsiders_do_not_see_the_dataset(world, api_as, thousand):
    assert new_version(api_as(world.viewer), thousand, exclude=[1]).status_code == 403
    assert new_version(api_as(world.outsider), thousand, exclude=[1]).status_code == 404
    assert api_as(world.outsider).get(f"/api/datasets/{thousand.pk}/images").status_code == 404
    assert Dataset.objects.count() == 1


def test_the_parent_cannot_be_deleted_while_a_version_is_made_from_it_and_can_after(
        world, api_as, thousand, django_capture_on_commit_callbacks):
    client = api_as(world.owner)
    response = new_version(client, thousand, exclude=[3])
    refused = client.delete(f"/api/datasets/{thousand.pk}")
    assert refused.status_code == 400 and "new version is being made" in refused.json()["error"]
    version = ingested(response)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/datasets/{thousand.pk}").status_code == 204
    # The version's pixels outlive the parent's pack (hard links).
    assert not storage.absolute(thousand.pack_path).exists()
    pack = open_pack(storage.absolute(version.pack_path))
    assert len(pack) == 999 and np.asarray(pack.images).shape == (999, 8, 8, 3) and pack.thumbs.shape[0] == 999


def test_the_gallery_api_filters_by_class_split_and_issue(world, api_as, upload):
    entries = class_entries(per_class=12)
    entries["dog/copy.png"] = entries["cat/000.png"]  # the same picture in two classes: a conflict
    dataset = ingested(upload(api_as(world.owner), zip_bytes(entries), team=world.team.slug))
    client = api_as(world.viewer)
    body = client.get(f"/api/datasets/{dataset.pk}/images?class=dog&split=train").json()
    assert body["results"] and all(i["class"] == "dog" and i["split"] == "train" for i in body["results"])
    assert body["results"][0]["thumbnail"].endswith(f"/datasets/{dataset.pk}/images/{body['results'][0]['index']}.png")
    conflict = client.get(f"/api/datasets/{dataset.pk}/images?issue=conflict").json()["results"]
    assert {i["name"] for i in conflict} == {"cat/000.png", "dog/copy.png"}
    assert client.get(f"/api/datasets/{dataset.pk}/images?issue=nonsense").status_code == 400
    assert client.get(f"/api/datasets/{dataset.pk}/images?class=eel").status_code == 400
