import pytest

from dlstudio import storage
from apps.datasets.models import Dataset
from apps.datasets.ingest import dataset_ingest
from tests.support.factories import class_entries, zip_bytes

pytestmark = pytest.mark.django_db


def test_upload_then_ingest_gives_the_fields_of_the_contract(world, api_as, upload):
    client = api_as(world.editor)
    response = upload(client, zip_bytes(class_entries()), team=world.team.slug, val_fraction="0.25",
                      test_fraction="0.25", seed="3")
    assert response.status_code == 201
    assert response.json()["status"] == "ingesting"
    dataset_id = response.json()["id"]
    dataset_ingest(dataset_id=dataset_id)

    body = client.get(f"/api/datasets/{dataset_id}").json()
    assert body["status"] == "ready" and body["progress"] == 1.0 and body["error"] == ""
    assert body["team"] == world.team.slug and body["name"] == "Pets"
    assert body["num_images"] == 24 and body["image_size"] == 12 and body["channels"] == 3
    assert [c["name"] for c in body["classes"]] == ["cat", "dog"]
    for c in body["classes"]:
        assert c["train"] + c["val"] + c["test"] == 12 and c["val"] == 3 and c["test"] == 3
    assert {"corrupt", "duplicates", "leaks", "imbalance", "warnings"} <= set(body["health"])
    assert body["health"]["corrupt"] == [] and body["health"]["imbalance"] == 1.0


def test_the_upload_is_removed_once_packed(world, api_as, upload, data_dir):
    response = upload(api_as(world.owner), zip_bytes(class_entries()))
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert storage.absolute(dataset.upload_path).is_file()
    dataset_ingest(dataset_id=dataset.pk)
    assert not any((data_dir / "uploads").iterdir())
    dataset.refresh_from_db()
    assert storage.absolute(dataset.pack_path).is_dir()


def test_default_team_is_the_personal_one_for_a_member_of_several(world, api_as, upload):
    response = upload(api_as(world.viewer), zip_bytes(class_entries()))
    assert response.status_code == 201
    assert Dataset.objects.get(pk=response.json()["id"]).team.personal


def test_ingest_runs_once_however_often_the_task_arrives(ready_dataset):
    dataset_ingest(dataset_id=ready_dataset.pk)
    assert ready_dataset.images.count() == 24 and ready_dataset.classes.count() == 2


def test_list_is_newest_first_and_only_the_callers_teams(world, api_as, ready_dataset, upload):
    upload(api_as(world.outsider), zip_bytes(class_entries()), name="Theirs")
    upload(api_as(world.owner), zip_bytes(class_entries()), name="Newer", team=world.team.slug)
    body = api_as(world.viewer).get("/api/datasets").json()
    assert [d["name"] for d in body["results"]] == ["Newer", "Pets"]
    assert body["next"] is None


def test_anonymous_is_401(ready_dataset, api_as, upload):
    client = api_as(None)
    assert client.get("/api/datasets").status_code == 401
    assert client.get(f"/api/datasets/{ready_dataset.pk}").status_code == 401
    assert upload(client, zip_bytes(class_entries())).status_code == 401


def test_outsider_gets_404_for_everything_of_another_team(world, api_as, upload, ready_dataset):
    client = api_as(world.outsider)
    assert client.get(f"/api/datasets/{ready_dataset.pk}").status_code == 404
    assert client.delete(f"/api/datasets/{ready_dataset.pk}").status_code == 404
    response = upload(client, zip_bytes(class_entries()), team=world.team.slug)
    assert response.status_code == 404 and response.json() == {"error": "Not found."}
    assert Dataset.objects.filter(pk=ready_dataset.pk).exists()


def test_viewer_reads_but_cannot_upload_or_delete(world, api_as, upload, ready_dataset):
    client = api_as(world.viewer)
    assert client.get(f"/api/datasets/{ready_dataset.pk}").status_code == 200
    response = upload(client, zip_bytes(class_entries()), team=world.team.slug)
    assert response.status_code == 403 and "viewer" in response.json()["error"]
    assert client.delete(f"/api/datasets/{ready_dataset.pk}").status_code == 403
    assert Dataset.objects.count() == 1


def test_editor_deletes_and_the_files_go(world, api_as, ready_dataset, django_capture_on_commit_callbacks):
    pack = storage.absolute(ready_dataset.pack_path)
    with django_capture_on_commit_callbacks(execute=True):
        assert api_as(world.editor).delete(f"/api/datasets/{ready_dataset.pk}").status_code == 204
    assert not Dataset.objects.filter(pk=ready_dataset.pk).exists()
    assert not pack.exists()


@pytest.mark.parametrize("field,value,expected", [
    ("val_fraction", "2", "val_fraction"),
    ("resize_mode", "stretch", "resize_mode"),
    ("color", "cmyk", "color"),
    ("image_size", "0", "image_size"),
    ("test_fraction", "0.8", "test_fraction"),
])
def test_bad_options_are_a_400_naming_the_field(world, api_as, upload, field, value, expected):
    response = upload(api_as(world.owner), zip_bytes(class_entries()), **{field: value})
    assert response.status_code == 400
    assert response.json()["field"] == expected and response.json()["error"]
    assert Dataset.objects.count() == 0


def test_missing_name_is_a_400(world, api_as):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api_as(world.owner).post("/api/datasets", {"archive": SimpleUploadedFile("a.zip", b"PK")},
                                        format="multipart")
    assert response.status_code == 400 and response.json()["field"] == "name"
