"""Upload through the API; the real prefork `ingest` worker packs it (its process pool included)."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.datasets.models import Dataset
from apps.teams.services import token_create
from tests.support.factories import class_entries, zip_bytes
from tests.support.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_upload_becomes_a_ready_dataset_in_the_worker(world, celery_workers):
    _, key = token_create(user=world.editor, name="t")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    archive = zip_bytes(class_entries(classes=("a", "b", "c"), per_class=40, size=(20, 20)))
    response = api.post("/api/datasets", {"archive": SimpleUploadedFile("abc.zip", archive), "name": "ABC",
                                          "team": world.team.slug}, format="multipart")
    assert response.status_code == 201
    dataset_id = response.json()["id"]

    def finished():
        body = api.get(f"/api/datasets/{dataset_id}").json()
        return body if body["status"] != "ingesting" else None

    body = wait_until(finished, timeout=120, interval=0.3, message="the worker to ingest the dataset")
    assert body["status"] == "ready", body["error"] + celery_workers.general.log()[-2000:]
    assert body["num_images"] == 120 and body["image_size"] == 20
    assert Dataset.objects.get(pk=dataset_id).images.count() == 120
