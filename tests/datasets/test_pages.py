import pytest
from django.urls import reverse

from apps.datasets.models import Dataset
from apps.datasets.ingest import dataset_ingest
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db


def test_list_shows_the_teams_datasets(client, world, ready_dataset):
    page = sign_in(client, world.viewer, world.team).get(reverse("dataset_list")).content.decode()
    assert "Pets" in page and "ready" in page


def test_empty_list_offers_the_sample_to_editors_only(client, world):
    page = sign_in(client, world.editor, world.team).get(reverse("dataset_list")).content.decode()
    assert 'id="sample-dataset"' in page
    client.logout()
    page = sign_in(client, world.viewer, world.team).get(reverse("dataset_list")).content.decode()
    assert 'id="sample-dataset"' not in page


def test_detail_page_has_charts_health_mean_image_and_gallery(client, world, ready_dataset):
    signed_in = sign_in(client, world.viewer, world.team)
    page = signed_in.get(reverse("dataset_detail", args=[ready_dataset.pk])).content.decode()
    assert 'id="chart-classes"' in page and 'id="chart-sizes"' in page
    assert 'id="health"' in page and reverse("dataset_mean_image", args=[ready_dataset.pk]) in page
    assert page.count('class="thumb"') == 24
    assert "/static/plotly/plotly.min.js" in page


def test_gallery_filters_by_class_and_split(client, world, ready_dataset):
    c = sign_in(client, world.viewer, world.team)
    url = reverse("dataset_detail", args=[ready_dataset.pk])
    assert c.get(url, {"label": 1}).content.decode().count('class="thumb"') == 12
    train_dogs = ready_dataset.images.filter(label=1, split=0).count()
    assert c.get(url, {"label": 1, "split": 0}).content.decode().count('class="thumb"') == train_dogs


def test_thumbnails_and_mean_image_are_png_with_nosniff(client, world, ready_dataset):
    c = sign_in(client, world.viewer, world.team)
    for url in [reverse("dataset_thumbnail", args=[ready_dataset.pk, 0]),
                reverse("dataset_mean_image", args=[ready_dataset.pk])]:
        response = c.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
        assert response.content.startswith(b"\x89PNG")
    assert c.get(reverse("dataset_thumbnail", args=[ready_dataset.pk, 24])).status_code == 404


def test_outsider_gets_404_on_every_dataset_page(client, world, ready_dataset):
    c = sign_in(client, world.outsider, world.team)
    for url in [reverse("dataset_detail", args=[ready_dataset.pk]),
                reverse("dataset_thumbnail", args=[ready_dataset.pk, 0]),
                reverse("dataset_mean_image", args=[ready_dataset.pk])]:
        assert c.get(url).status_code == 404, url
    assert c.post(reverse("dataset_delete", args=[ready_dataset.pk])).status_code == 404
    assert Dataset.objects.filter(pk=ready_dataset.pk).exists()


def test_viewer_cannot_upload_delete_or_make_the_sample(client, world, ready_dataset):
    c = sign_in(client, world.viewer, world.team)
    assert c.get(reverse("dataset_upload")).status_code == 403
    assert c.post(reverse("dataset_delete", args=[ready_dataset.pk])).status_code == 403
    assert c.post(reverse("dataset_sample")).status_code == 403
    assert Dataset.objects.count() == 1


def test_anonymous_is_sent_to_login(client, ready_dataset):
    for url in [reverse("dataset_list"), reverse("dataset_detail", args=[ready_dataset.pk]),
                reverse("dataset_thumbnail", args=[ready_dataset.pk, 0])]:
        assert client.get(url).url.startswith(reverse("login"))


def test_upload_form_without_javascript(client, world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.support.factories import class_entries, zip_bytes

    c = sign_in(client, world.editor, world.team)
    response = c.post(reverse("dataset_upload"), {
        "archive": SimpleUploadedFile("pets.zip", zip_bytes(class_entries())), "name": "Pets",
        "val_fraction": "0.2", "test_fraction": "0.1", "resize_mode": "crop", "color": "grayscale", "seed": "0"})
    dataset = Dataset.objects.get()
    assert response.url == reverse("dataset_detail", args=[dataset.pk])
    assert dataset.team == world.team and dataset.options["resize_mode"] == "crop"
    dataset_ingest(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    assert dataset.channels == 1


def test_upload_form_shows_a_bad_archive_beside_the_field(client, world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    c = sign_in(client, world.editor, world.team)
    response = c.post(reverse("dataset_upload"), {
        "archive": SimpleUploadedFile("x.zip", b"nope"), "name": "X", "val_fraction": "0.2",
        "test_fraction": "0.1", "resize_mode": "squash", "color": "auto", "seed": "0"})
    assert response.status_code == 200 and b'data-field="archive"' in response.content
    assert Dataset.objects.count() == 0


def test_sample_dataset_is_real_digits_through_the_same_ingest(client, world):
    c = sign_in(client, world.editor, world.team)
    c.post(reverse("dataset_sample"))
    dataset = Dataset.objects.get()
    dataset_ingest(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    assert dataset.status == "ready" and dataset.num_images == 1797
    assert dataset.classes.count() == 10 and dataset.channels == 1 and dataset.image_size == 8
