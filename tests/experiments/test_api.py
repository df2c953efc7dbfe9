import pytest

from apps.experiments.models import Experiment
from apps.runs.models import Run
from tests.support.factories import QUICK

pytestmark = pytest.mark.django_db


def test_create_an_experiment_and_start_a_run(world, dataset, api_as):
    api = api_as(world.editor)
    response = api.post("/api/experiments", {"name": "first", "dataset": dataset.pk, "config": QUICK}, format="json")
    assert response.status_code == 201
    experiment_id = response.json()["id"]
    body = api.get(f"/api/experiments/{experiment_id}").json()
    assert body["name"] == "first" and body["dataset"] == dataset.pk and body["runs"] == []
    assert body["config"]["epochs"] == 2 and body["config"]["arch"] == "smallcnn"  # defaults filled in
    started = api.post(f"/api/experiments/{experiment_id}/runs", {"config": {"epochs": 3}}, format="json")
    assert started.status_code == 201 and started.json()["status"] == "queued"
    run = Run.objects.get(pk=started.json()["id"])
    assert run.epochs == 3 and api.get(f"/api/experiments/{experiment_id}").json()["runs"] == [run.pk]


@pytest.mark.parametrize("config,field", [
    ({"lr": 0}, "config.lr"),
    ({"arch": "resnet1000"}, "config.arch"),
    ({"learning_rate": 0.1}, "config.learning_rate"),
    ({"augment": {"rotate": "lots"}}, "config.augment.rotate"),
    ({"epochs": 5000}, "config.epochs"),
])
def test_a_bad_config_is_a_400_naming_the_field(world, dataset, api_as, config, field):
    response = api_as(world.editor).post("/api/experiments", {"name": "x", "dataset": dataset.pk, "config": config},
                                         format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"]
    assert not Experiment.objects.exists()


