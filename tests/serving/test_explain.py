"""Explain, activations and filters over HTTP: the engine's answer, a sentence for bad input, scoped."""
import base64
import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.serving import predictors
from tests.serving.test_predict import png

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    predictors.clear_cache()
    yield
    predictors.clear_cache()


def picture(data_url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):])))


def explain(api, run, content: bytes, name="a.png", **fields):
    return api.post(f"/api/runs/{run.pk}/explain", {"image": SimpleUploadedFile(name, content), **fields},
                    format="multipart")


def test_a_viewer_gets_the_top_class_and_a_heatmap_of_the_input_size(world, finished_run, api_as):
    response = explain(api_as(world.viewer), finished_run, png(30, size=(20, 13), mode="RGB"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["method"] == "gradcam" and body["class"] == body["predictions"][0]["label"] == "dark"
    size = predictors.predictor_for(finished_run).preprocessing.image_size
    assert picture(body["heatmap"]).size == (size, size) and body["inference_ms"] > 0


def test_a_chosen_class_is_explained_and_an_unknown_one_is_a_sentence(world, finished_run, api_as):
    api = api_as(world.viewer)
    assert explain(api, finished_run, png(30), **{"class": "light"}).json()["class"] == "light"
    response = explain(api, finished_run, png(30), **{"class": "zebra"})
    assert response.status_code == 400 and "'zebra' is not one of this run's classes" in response.json()["error"]


@pytest.mark.parametrize("name,content", [("notes.txt", b"plain text, no image"), ("empty.png", b"")])
def test_a_file_that_is_not_an_image_is_a_400_naming_it(world, finished_run, api_as, name, content):
    response = explain(api_as(world.viewer), finished_run, content, name=name)
    assert response.status_code == 400 and name in response.json()["error"]


def test_no_image_is_a_400_with_a_sentence(world, finished_run, api_as):
    response = api_as(world.viewer).post(f"/api/runs/{finished_run.pk}/explain", {}, format="multipart")
    assert response.status_code == 400 and "`image`" in response.json()["error"]


def test_an_image_of_the_runs_dataset_is_explained_by_index(world, finished_run, api_as):
    api = api_as(world.viewer)
    body = api.get(f"/api/runs/{finished_run.pk}/explain/0", {"class": "light"}).json()
    assert body["class"] == "light" and picture(body["heatmap"]).mode == "RGB"
    assert api.get(f"/api/runs/{finished_run.pk}/explain/1000000").status_code == 404
    assert api.get(f"/api/runs/{finished_run.pk}/explain/0", {"class": "x" * 500}).status_code == 400


def test_activations_are_one_grid_per_stage_from_fine_to_coarse(world, finished_run, api_as):
    response = api_as(world.viewer).post(f"/api/runs/{finished_run.pk}/activations",
                                         {"image": SimpleUploadedFile("a.png", png(200))}, format="multipart")
    assert response.status_code == 200, response.content
    stages = response.json()["stages"]
    assert stages and [s["shape"][-1] for s in stages] == sorted((s["shape"][-1] for s in stages), reverse=True)
    for stage in stages:
        assert 1 <= len(stage["channels"]) <= 8 and picture(stage["image"]).mode == "RGB"


def test_the_filters_picture_is_a_png_for_viewers(client, world, finished_run):
    client.force_login(world.viewer)
    response = client.get(f"/runs/{finished_run.pk}/filters.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert np.asarray(Image.open(io.BytesIO(response.content))).ndim >= 2


def test_outsiders_get_404_everywhere(client, world, finished_run, api_as):
    api = api_as(world.outsider)
    assert explain(api, finished_run, png(30)).status_code == 404
    assert api.get(f"/api/runs/{finished_run.pk}/explain/0").status_code == 404
    assert api.post(f"/api/runs/{finished_run.pk}/activations", {"image": SimpleUploadedFile("a.png", png(3))},
                    format="multipart").status_code == 404
    client.force_login(world.outsider)
    assert client.get(f"/runs/{finished_run.pk}/filters.png").status_code == 404
