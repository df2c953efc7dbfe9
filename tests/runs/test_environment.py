"""The environment a training worker records on the run: in the API, on the run page, in the model card."""
import pytest
from django.urls import reverse

from tests.support.factories import make_experiment, ready_dataset, sign_in, trained_run
from workers.engine.train.environment import KEYS

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(world, tmp_path):
    dataset = ready_dataset(world.team, tmp_path / "ld.zip", per_class=30)
    experiment = make_experiment(world.team, world.owner, dataset)
    return trained_run(experiment, world.owner, overrides={"deterministic": True})


def test_a_trained_run_records_its_whole_environment(world, api_as, client, trained):
    env = api_as(world.viewer).get(f"/api/runs/{trained.pk}").json()["environment"]
    assert sorted(env) == sorted(KEYS) and all(env[k] for k in ("python", "torch", "torchvision", "host", "code"))
    assert env["gpu"] == "cpu" and env["cuda"] is None and env["cudnn"] is None
    assert env["deterministic"] is True and env["code"] == trained.code_version

    sign_in(client, world.viewer)
    card = client.get(reverse("run_export_model_card", args=[trained.pk])).json()
    assert card["trained"]["environment"] == env

    page = client.get(reverse("run_detail", args=[trained.pk])).content.decode()
    assert f"<dd>{env['torchvision']}</dd>" in page and f"<dd>{env['host']}</dd>" in page
    assert "slower on a GPU" in page
