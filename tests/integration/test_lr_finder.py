"""The LR finder through real Redis and a real training worker: started from the API, run by the
`experiments.lr_range_test` task on the `train` queue, shown on the experiment page."""
import pytest
from django.urls import reverse

from apps.experiments.services import experiment_create
from tests.support.factories import QUICK, ready_dataset
from tests.support.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

THREE_EPOCHS = {**QUICK, "epochs": 3}


def test_a_range_test_started_from_the_api_ends_on_the_experiment_page(client, world, tmp_path, celery_workers,
                                                                        api_as):
    dataset = ready_dataset(world.team, tmp_path / "light-dark.zip")
    experiment = experiment_create(team=world.team, user=world.editor, name="exp", dataset=dataset,
                                   config=THREE_EPOCHS)
    api, url = api_as(world.editor), f"/api/experiments/{experiment.pk}/lr-finder"
    started = api.post(url)
    assert started.status_code == 201 and started.json()["status"] == "queued"

    body = wait_until(lambda: (lambda b: b if b["status"] in ("succeeded", "failed") else None)(api.get(url).json()),
                      timeout=120, interval=0.1, message="the range test to finish")
    assert body["status"] == "succeeded", body["error"] + celery_workers.train_logs()[-3000:]
    assert body["id"] == started.json()["id"] and len(body["lrs"]) == len(body["losses"]) > 0
    assert body["lrs"][0] <= body["suggested_lr"] <= body["lrs"][-1]
    assert body["figure"]["layout"]["xaxis"]["type"] == "log"
    assert "experiments.lr_range_test" in celery_workers.train_logs()

    assert client.login(username="eddie", password=world.password)
    page = client.get(reverse("experiment_detail", args=[experiment.pk])).content.decode()
    suggested = f"{body['suggested_lr']:.1e}"
    assert 'data-status="succeeded"' in page and 'id="chart-lr-finder"' in page and "plotly.min.js" in page
    assert f"?from_experiment={experiment.pk}&amp;lr={suggested}" in page
    assert f"Use {suggested} in a new experiment" in page
