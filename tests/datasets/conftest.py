import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import Dataset
from apps.datasets.ingest import dataset_ingest
from tests.support.factories import class_entries, zip_bytes


@pytest.fixture(autouse=True)
def data_dir(isolated_data_dir):
    return isolated_data_dir


@pytest.fixture
def upload():
    def upload(client, data: bytes, *, filename="pets.zip", name="Pets", **fields):
        payload = {"archive": SimpleUploadedFile(filename, data), "name": name, **fields}
        return client.post("/api/datasets", payload, format="multipart")
    return upload


@pytest.fixture
def ready_dataset(world, api_as, upload):
    """A ready dataset of the world's team: 2 classes x 12 images of 12x12 RGB, ingested in-process."""
    response = upload(api_as(world.owner), zip_bytes(class_entries()), team=world.team.slug)
    assert response.status_code == 201, response.json()
    dataset_ingest(dataset_id=response.json()["id"])
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.status == "ready", dataset.error
    return dataset
