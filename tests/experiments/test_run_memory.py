"""A config whose memory estimate is over DLSTUDIO_MAX_RUN_GB is refused wherever it would be saved or
trained: at experiment create and config change, at run start, and among a sweep's values; the 400 names the
key to lower and the sentence says how much it needs and the limit."""
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.experiments.models import Experiment
from apps.experiments.services import experiment_set_config
from apps.runs.models import Run
from apps.sweeps.models import Sweep
from tests.support.factories import QUICK, make_experiment

pytestmark = pytest.mark.django_db

HUGE_HEAD = {**QUICK, "hidden_units": [65536] * 8}  # 30 billion parameters: 112 GiB of fp32 weights alone


def refusal_of_huge_head(answer):
    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert body["field"] == "config.hidden_units"
    assert body["error"].startswith("This config needs about ")
    assert "30.1 billion parameters" in body["error"] or "30.2 billion parameters" in body["error"]
    assert "the limit is 20 GB (DLSTUDIO_MAX_RUN_GB). Lower hidden_units" in body["error"]
    return body["error"]


@pytest.fixture(autouse=True)
def limit(settings):
    settings.MAX_RUN_GB = 20


def test_a_config_over_the_limit_is_refused_at_experiment_create(world, dataset, api_as):
    answer = api_as(world.editor).post("/api/experiments", {"name": "huge", "dataset": dataset.pk,
                                                            "config": HUGE_HEAD}, format="json")
    refusal_of_huge_head(answer)
    assert not Experiment.objects.exists()


def test_a_normal_config_is_accepted(world, dataset, api_as):
    api = api_as(world.editor)
    answer = api.post("/api/experiments", {"name": "normal", "dataset": dataset.pk,
                                           "config": {**QUICK, "hidden_units": [512, 512]}}, format="json")
    assert answer.status_code == 201, answer.content
    started = api.post(f"/api/experiments/{answer.json()['id']}/runs", {"config": {"batch_size": 256}}, format="json")
    assert started.status_code == 201, started.content


def test_a_run_over_the_limit_is_refused_at_start(world, dataset, api_as, settings):
    experiment = make_experiment(world.team, world.editor, dataset, QUICK)
    api = api_as(world.editor)
    answer = api.post(f"/api/experiments/{experiment.pk}/runs", {"config": {"hidden_units": [65536] * 8}},
                      format="json")
    refusal_of_huge_head(answer)
    # An experiment saved under a higher limit (or before the limit existed) starts no run past today's.
    settings.MAX_RUN_GB = 100_000
    Experiment.objects.filter(pk=experiment.pk).update(config={**experiment.config, **HUGE_HEAD})
    settings.MAX_RUN_GB = 20
    refusal_of_huge_head(api.post(f"/api/experiments/{experiment.pk}/runs", {}, format="json"))
    assert not Run.objects.exists()


def test_the_limit_is_the_setting(world, dataset, api_as, settings):
    settings.MAX_RUN_GB = 100_000
    answer = api_as(world.editor).post("/api/experiments", {"name": "huge", "dataset": dataset.pk,
                                                            "config": HUGE_HEAD}, format="json")
    assert answer.status_code == 201


def test_a_big_batch_is_refused_naming_batch_size(world, dataset, api_as, settings):
    settings.MAX_RUN_GB = 1
    answer = api_as(world.editor).post("/api/experiments", {"name": "wide", "dataset": dataset.pk, "config": {
        **QUICK, "arch": "resnet50", "batch_size": 4096}}, format="json")
    assert answer.status_code == 400 and answer.json()["field"] == "config.batch_size"
    assert "batch_size 4096 at " in answer.json()["error"]
    assert answer.json()["error"].endswith("Lower batch_size or the image size, or pick a smaller arch.")


def test_a_config_change_over_the_limit_is_refused(world, dataset):
    experiment = make_experiment(world.team, world.editor, dataset, QUICK)
    with pytest.raises(ValidationError) as caught:
        experiment_set_config(experiment=experiment, user=world.editor, config=HUGE_HEAD)
    assert caught.value.code == "config.hidden_units" and "DLSTUDIO_MAX_RUN_GB" in caught.value.messages[0]
    experiment.refresh_from_db()
    assert experiment.config["hidden_units"] == QUICK.get("hidden_units", [128])


def test_a_sweep_value_over_the_limit_is_refused_before_any_trial(world, dataset, api_as):
    experiment = make_experiment(world.team, world.editor, dataset, QUICK)
    answer = api_as(world.editor).post(reverse("api_sweeps"), {
        "name": "heads", "experiment": experiment.pk, "method": "grid", "max_parallel": 2, "metric": "val_acc",
        "early_stop": None, "parameters": {"hidden_units": {"values": [[64], [65536] * 8]}}}, format="json")
    assert answer.status_code == 400 and answer.json()["field"] == "parameters.hidden_units"
    assert "DLSTUDIO_MAX_RUN_GB" in answer.json()["error"]
    assert not Sweep.objects.exists() and not Run.objects.exists()
