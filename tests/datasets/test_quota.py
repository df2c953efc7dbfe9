"""The team's storage quota and the upscale check: an upload is weighed from its listing and its images'
headers before anything is decoded, refused with a sentence when it would not fit, and counted once
stored."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.ingest import dataset_ingest
from apps.datasets.models import Dataset
from apps.teams.selectors import team_usage
from apps.weights.models import WeightsFile
from dlstudio import storage
from tests.support.factories import class_entries, zip_bytes

pytestmark = pytest.mark.django_db

TINY = zip_bytes(class_entries(per_class=100, size=(1, 1)))  # 200 1x1 PNGs, a few KB


def test_an_upload_whose_pack_would_pass_the_quota_is_refused_with_usage_and_limit(world, api_as, upload,
                                                                                    settings, data_dir):
    settings.TEAM_QUOTA_GB = 1
    # 200 x 1024 x 1024 x 3 bytes: a pack of about 0.6 GB, while the team already holds 0.5 GB
    Dataset.objects.create(team=world.team, name="big", status="ready", bytes=500_000_000)
    response = upload(api_as(world.editor), TINY, team=world.team.slug, image_size="1024", color="rgb",
                      allow_upscale="true")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "archive"
    assert body["error"] == ("This upload would make a pack of about 632 MB; the team uses 500 MB of its 1.0 GB "
                             "storage quota (DLSTUDIO_TEAM_QUOTA_GB); delete datasets, runs or weights files, or "
                             "choose a smaller image_size, or ask an administrator to raise the quota.")
    assert Dataset.objects.filter(team=world.team).count() == 1  # nothing stored: no row, no upload
    assert not any((data_dir / "uploads").iterdir())


def test_the_same_upload_fits_at_a_sensible_size(world, api_as, upload, settings):
    settings.TEAM_QUOTA_GB = 1
    Dataset.objects.create(team=world.team, name="big", status="ready", bytes=500_000_000)
    response = upload(api_as(world.editor), TINY, team=world.team.slug, image_size="4", color="rgb")
    assert response.status_code == 201, response.json()


def test_enlarging_1x1_images_to_1024_is_refused_until_confirmed(world, api_as, upload):
    client = api_as(world.editor)
    response = upload(client, TINY, team=world.team.slug, image_size="1024", color="rgb")
    assert response.status_code == 400
    assert response.json() == {"field": "image_size", "error": (
        "The largest image in this archive is 1 px on its longest side, and image_size 1024 would enlarge every "
        "image more than 4 times into a pack of about 632 MB; choose an image_size of at most 4, or confirm the "
        "enlargement (allow_upscale; on the form, \"Enlarge small images\").")}
    assert not Dataset.objects.filter(team=world.team).exists()

    confirmed = upload(client, zip_bytes(class_entries(per_class=3, size=(1, 1))), team=world.team.slug,
                       image_size="64", allow_upscale="true")
    assert confirmed.status_code == 201, confirmed.json()
    dataset_ingest(dataset_id=confirmed.json()["id"])
    dataset = Dataset.objects.get(pk=confirmed.json()["id"])
    assert dataset.status == "ready", dataset.error
    assert dataset.image_size == 64


def test_the_ingest_job_checks_again_on_every_header(world, api_as, upload):
    """An upload accepted on a sample (or before the options said so) is still refused by the job."""
    response = upload(api_as(world.editor), zip_bytes(class_entries(per_class=3, size=(1, 1))),
                      team=world.team.slug, image_size="64", allow_upscale="true")
    dataset = Dataset.objects.get(pk=response.json()["id"])
    Dataset.objects.filter(pk=dataset.pk).update(options={**dataset.options, "allow_upscale": False})
    dataset_ingest(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    assert dataset.status == "failed" and dataset.bytes == 0 and not dataset.pack_path
    assert dataset.error.startswith("The largest image in this archive is 1 px on its longest side")


def test_the_ingest_job_refuses_an_upload_the_quota_lost_room_for_meanwhile(world, api_as, upload, settings):
    response = upload(api_as(world.editor), zip_bytes(class_entries()), team=world.team.slug)
    settings.TEAM_QUOTA_GB = 1
    Dataset.objects.create(team=world.team, name="raced", status="ready", bytes=999_999_000)
    dataset_ingest(dataset_id=response.json()["id"])
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.status == "failed" and dataset.bytes == 0
    assert dataset.error.startswith("This upload would make a pack of about")
    assert "of its 1.0 GB storage quota" in dataset.error


def test_usage_counts_a_pack_once_ingested_and_its_version_only_for_its_own_files(world, api_as, upload,
                                                                                 ready_dataset):
    pack = storage.absolute(ready_dataset.pack_path)
    on_disk = sum(f.stat().st_size for f in pack.rglob("*") if f.is_file())
    assert ready_dataset.bytes == on_disk > 24 * 12 * 12 * 3
    assert team_usage(world.team).datasets == on_disk

    response = api_as(world.owner).post(f"/api/datasets/{ready_dataset.pk}/versions",
                                        {"exclude": [0, 1]}, format="json")
    assert response.status_code == 201, response.json()
    dataset_ingest(dataset_id=response.json()["id"])
    version = Dataset.objects.get(pk=response.json()["id"])
    assert version.status == "ready", version.error
    assert 0 < version.bytes < ready_dataset.bytes / 2  # its pixels are the parent's, by hard link
    assert team_usage(world.team).datasets == ready_dataset.bytes + version.bytes


def test_an_upload_reserves_its_estimate_until_ingested(world, api_as, upload):
    response = upload(api_as(world.editor), zip_bytes(class_entries()), team=world.team.slug)
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.bytes >= 24 * 12 * 12 * 3 + dataset.upload_bytes
    assert team_usage(world.team).datasets == dataset.bytes


def test_the_team_page_shows_usage_by_kind(world, client, settings):
    settings.TEAM_QUOTA_GB = 2
    Dataset.objects.create(team=world.team, name="big", status="ready", bytes=500_000_000)
    WeightsFile.objects.create(team=world.team, name="w", arch="resnet18", path="weights/x.pth", format="pth",
                               size=250_000_000, sha256="0" * 64)
    usage = team_usage(world.team)
    assert (usage.datasets, usage.weights, usage.total, usage.quota) == (500_000_000, 250_000_000, 750_000_000,
                                                                         2 * 10**9)
    client.force_login(world.viewer)
    page = client.get(f"/teams/{world.team.slug}/").content.decode()
    assert '<strong id="storage-used">750 MB</strong> of <span id="storage-quota">2.0 GB</span>' in page
    assert 'class="usage-datasets" style="width: 25.0%"' in page and "Weights: 250 MB" in page


def test_a_version_adding_images_past_the_quota_is_refused(world, api_as, ready_dataset, settings):
    settings.TEAM_QUOTA_GB = 1
    Dataset.objects.create(team=world.team, name="big", status="ready", bytes=10**9 - ready_dataset.bytes - 1000)
    response = api_as(world.owner).post(f"/api/datasets/{ready_dataset.pk}/versions", {
        "archive": SimpleUploadedFile("more.zip", zip_bytes(class_entries(per_class=5)))}, format="multipart")
    assert response.status_code == 400 and response.json()["field"] == "archive"
    assert response.json()["error"] == (
        "This upload would make a pack of about 77 KB; the team uses 1.0 GB of its 1.0 GB storage quota "
        "(DLSTUDIO_TEAM_QUOTA_GB); delete datasets, runs or weights files, or ask an administrator to raise the "
        "quota.")
    assert not ready_dataset.children.exists()
