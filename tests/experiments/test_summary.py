"""The model summary: before training (POST /api/experiments/summary) and of a run (GET /api/runs/<id>/model)."""
import pytest

from workers.engine import build_model

pytestmark = pytest.mark.django_db

URL = "/api/experiments/summary"


def parameters(config, *, classes, channels, size):
    return sum(p.numel() for p in build_model(config, num_classes=classes, channels=channels,
                                              image_size=size).parameters())


@pytest.mark.parametrize("who", ["editor", "viewer", "owner"])
def test_members_and_viewers_get_the_summary_of_a_config(world, dataset, api_as, who):
    config = {"arch": "lenet5", "hidden_units": [32]}
    response = api_as(getattr(world, who)).post(URL, {"dataset": dataset.pk, "config": config}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    # The light-and-dark dataset: 8 px grayscale squares of two classes.
    assert body["input"] == {"channels": 1, "image_size": 8, "num_classes": 2}
    assert body["total_params"] == parameters(config, classes=2, channels=1, size=8) == body["trainable_params"]
    assert body["mult_adds"] > 0 and body["warnings"] == []
    assert body["layers"][-1] == {"name": "head.4", "type": "Linear", "output_shape": [2], "params": 66}
    assert set(body["layers"][0]) == {"name", "type", "output_shape", "params"}


def test_the_default_config_and_a_frozen_backbone(world, dataset, api_as):
    api = api_as(world.editor)
    default = api.post(URL, {"dataset": dataset.pk}, format="json").json()
    assert default["total_params"] == parameters({}, classes=2, channels=1, size=8)
    frozen = api.post(URL, {"dataset": dataset.pk, "config": {"freeze_backbone_epochs": 1}}, format="json").json()
    assert frozen["total_params"] == default["total_params"] > frozen["trainable_params"] > 0


def test_images_too_small_for_the_arch_are_warned_about(world, dataset, api_as):
    body = api_as(world.editor).post(URL, {"dataset": dataset.pk, "config": {"arch": "alexnet"}}, format="json").json()
    assert body["warnings"] == ["alexnet is meant for images of at least 63 px and these are 8 px; a network for "
                                "small images (smallcnn, lenet5) suits them better."]


@pytest.mark.parametrize("config,field", [
    ({"arch": "resnet1000"}, "config.arch"),
    ({"hidden_units": [0]}, "config.hidden_units"),
    ({"dropout": 2}, "config.dropout"),
    ({"layers": 3}, "config.layers"),
])
def test_a_bad_config_is_a_400_naming_the_field(world, dataset, api_as, config, field):
    response = api_as(world.viewer).post(URL, {"dataset": dataset.pk, "config": config}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"]


def test_a_dataset_is_required(world, api_as):
    response = api_as(world.editor).post(URL, {"config": {}}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "dataset"


def test_an_outsider_gets_404_for_a_dataset_of_another_team(world, dataset, api_as):
    response = api_as(world.outsider).post(URL, {"dataset": dataset.pk, "config": {}}, format="json")
    assert response.status_code == 404 and response.json() == {"error": "Not found."}
    assert api_as(None).post(URL, {"dataset": dataset.pk}, format="json").status_code == 401


def test_a_dataset_not_ready_yet_is_a_400(world, dataset, api_as):
    dataset.status = dataset.Status.INGESTING
    dataset.save(update_fields=["status"])
    response = api_as(world.editor).post(URL, {"dataset": dataset.pk}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "dataset"


def test_a_runs_model(world, finished_run, api_as):
    url = f"/api/runs/{finished_run.pk}/model"
    body = api_as(world.viewer).get(url).json()
    assert body["total_params"] == parameters(finished_run.config, classes=2, channels=1, size=8)
    assert body["layers"] and body["input"] == {"channels": 1, "image_size": 8, "num_classes": 2}
    assert api_as(world.outsider).get(url).status_code == 404


def test_a_runs_model_outlives_its_dataset_through_the_checkpoint(world, finished_run, api_as):
    from apps.datasets.services import dataset_delete

    url = f"/api/runs/{finished_run.pk}/model"
    before = api_as(world.editor).get(url).json()
    dataset_delete(dataset=finished_run.dataset)
    finished_run.refresh_from_db()
    assert finished_run.dataset is None
    assert api_as(world.editor).get(url).json() == before  # the checkpoint records the same images

    finished_run.best_checkpoint = finished_run.last_checkpoint = ""
    finished_run.save(update_fields=["best_checkpoint", "last_checkpoint"])
    response = api_as(world.editor).get(url)
    assert response.status_code == 404 and "size of its images is unknown" in response.json()["error"]
