"""The LR finder in-process: the job the `experiments.lr_range_test` task runs (without a broker), the
button on the experiment page, the API, and the link that carries the suggestion into the form."""
import json
import math
import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from apps.experiments.lr_finder import MIN_STEPS, lr_finding_run
from apps.experiments.models import LRFinding
from apps.experiments.services import GIVE_UP_AFTER, experiment_create, lr_finding_start
from tests.support.factories import QUICK
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def finding(world, experiment):
    finding = lr_finding_start(experiment=experiment, user=world.editor)
    assert lr_finding_run(finding_id=finding.pk, worker="w1@test") == "succeeded"
    finding.refresh_from_db()
    return finding


def test_a_range_test_stores_the_curve_and_a_suggestion_inside_the_swept_range(finding):
    assert finding.status == "succeeded" and finding.error == "" and finding.finished_at
    assert len(finding.lrs) == len(finding.losses) >= MIN_STEPS
    assert finding.lrs == sorted(finding.lrs) and math.isclose(finding.lrs[0], 1e-7)
    assert all(loss is None or math.isfinite(loss) for loss in finding.losses)
    assert finding.lrs[0] <= finding.suggested_lr <= finding.lrs[-1]
    # Not the noise of the first few batches, where the moving average rests on almost nothing.
    assert finding.suggested_lr > finding.lrs[len(finding.lrs) // 10]


def test_a_duplicate_delivery_is_a_no_op(finding):
    before = (finding.lrs, finding.suggested_lr, finding.finished_at)
    assert lr_finding_run(finding_id=finding.pk, worker="w2@test") == "not claimed"
    finding.refresh_from_db()
    assert (finding.lrs, finding.suggested_lr, finding.finished_at) == before


def test_a_second_start_is_refused_while_one_is_queued_or_running(world, experiment):
    first = lr_finding_start(experiment=experiment, user=world.editor)
    for status in ("queued", "running"):
        LRFinding.objects.filter(pk=first.pk).update(status=status)
        with pytest.raises(ValidationError, match="already queued or running"):
            lr_finding_start(experiment=experiment, user=world.owner)
    LRFinding.objects.filter(pk=first.pk).update(status="failed")
    assert lr_finding_start(experiment=experiment, user=world.owner).status == "queued"
    assert experiment.lr_findings.count() == 2


def test_a_test_stuck_for_an_hour_no_longer_blocks_a_new_one(world, experiment):
    stuck = lr_finding_start(experiment=experiment, user=world.editor)
    LRFinding.objects.filter(pk=stuck.pk).update(status="running", created=timezone.now() - GIVE_UP_AFTER * 2)
    fresh = lr_finding_start(experiment=experiment, user=world.editor)
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "given up" in stuck.error and fresh.status == "queued"
    assert experiment.lr_findings.first() == fresh


def test_viewers_cannot_start_one_and_the_dataset_must_be_ready(world, experiment, dataset):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        lr_finding_start(experiment=experiment, user=world.viewer)
    dataset.status = "ingesting"
    dataset.save(update_fields=["status"])
    experiment.refresh_from_db()
    with pytest.raises(ValidationError) as caught:
        lr_finding_start(experiment=experiment, user=world.editor)
    assert caught.value.code == "dataset"
    assert not LRFinding.objects.exists()


def test_missing_imagenet_weights_fail_with_the_engines_sentence(world, dataset, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache, whatever this machine has
    experiment = experiment_create(team=world.team, user=world.editor, name="transfer", dataset=dataset,
                                   config={**QUICK, "arch": "resnet18", "pretrained": "imagenet"})
    finding = lr_finding_start(experiment=experiment, user=world.editor)
    assert lr_finding_run(finding_id=finding.pk, worker="w1@test") == "failed"
    finding.refresh_from_db()
    assert finding.status == "failed" and finding.finished_at and finding.lrs == []
    assert "ImageNet weights for resnet18 are not on this machine" in finding.error
    assert "upload it as a weights file" in finding.error and finding.error.endswith(".")


def test_a_deleted_dataset_fails_with_a_sentence(world, experiment, dataset):
    finding = lr_finding_start(experiment=experiment, user=world.editor)
    dataset.delete()
    assert lr_finding_run(finding_id=finding.pk, worker="w1@test") == "failed"
    finding.refresh_from_db()
    assert finding.error == "The experiment's dataset was deleted; clone the experiment onto another dataset."


def test_non_finite_losses_are_stored_as_null(world, experiment, monkeypatch):
    from workers import engine
    from workers.engine.train.lr_finder import LRRangeResult

    lrs = [10 ** (-7 + i / 4) for i in range(30)]
    losses = [1.0 - i / 100 for i in range(30)]
    losses[20] = math.nan
    monkeypatch.setattr(engine, "lr_range_test", lambda **kwargs: LRRangeResult(lrs, losses, math.inf))
    finding = lr_finding_start(experiment=experiment, user=world.editor)
    assert lr_finding_run(finding_id=finding.pk, worker="w1@test") == "succeeded"
    finding.refresh_from_db()
    assert finding.losses[20] is None and len(finding.losses) == 30
    assert finding.suggested_lr is None  # an infinite suggestion is no suggestion
    json.dumps({"losses": finding.losses, "suggested_lr": finding.suggested_lr}, allow_nan=False)


# --- the page -----------------------------------------------------------------------------------

def test_the_button_queues_a_test_and_the_section_polls_until_it_is_done(client, world, experiment):
    c = sign_in(client, world.editor, world.team)
    page = c.get(reverse("experiment_detail", args=[experiment.pk])).content.decode()
    assert 'id="lr-finder-start"' in page and "No range test of this experiment yet" in page
    assert "plotly" not in page and "lr_finder.js" not in page
    answer = c.post(reverse("lr_finder_start", args=[experiment.pk]))
    assert answer.status_code == 302 and answer.url == reverse("experiment_detail", args=[experiment.pk]) + "#lr-finder"
    assert experiment.lr_findings.get().status == "queued"
    page = c.get(answer.url).content.decode()
    assert 'data-status="queued"' in page and "lr_finder.js" in page and "plotly" not in page
    assert "Queued an LR range test" in page and 'id="lr-finder-start" disabled' in page
    c.post(reverse("lr_finder_start", args=[experiment.pk]))
    assert experiment.lr_findings.count() == 1
    assert "already queued or running" in c.get(answer.url).content.decode()


def test_a_finished_test_shows_the_chart_and_the_suggestion_carries_into_the_form(client, world, experiment, finding):
    c = sign_in(client, world.editor, world.team)
    page = c.get(reverse("experiment_detail", args=[experiment.pk])).content.decode()
    assert 'data-status="succeeded"' in page and 'id="chart-lr-finder"' in page
    assert "plotly/plotly.min.js" in page and "js/charts.js" in page and "js/lr_finder.js" not in page
    assert 'id="figure-lr-finder"' in page and '"type": "log"' in page  # the figure, rendered server-side
    suggested = f"{finding.suggested_lr:.1e}"
    assert f'id="lr-finder-suggested">{suggested}<' in page and f"Use {suggested} in a new experiment" in page
    link = re.search(r'id="lr-finder-use" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert link == reverse("experiment_create") + f"?from_experiment={experiment.pk}&lr={suggested}"
    form = c.get(link).content.decode()
    assert f"with the learning rate {float(suggested):.3g}" in form
    assert re.search(rf'name="lr" value="{re.escape(str(float(suggested)))}"', form)
    assert 'value="quick (copy)"' in form


def test_a_failed_test_shows_its_error(client, world, experiment):
    finding = lr_finding_start(experiment=experiment, user=world.editor)
    LRFinding.objects.filter(pk=finding.pk).update(status="failed", error="The device ran out of memory; lower it.")
    signed_in = sign_in(client, world.viewer, world.team)
    page = signed_in.get(reverse("experiment_detail", args=[experiment.pk])).content.decode()
    assert 'id="lr-finder-error">The device ran out of memory; lower it.<' in page
    assert "lr_finder.js" not in page and "plotly" not in page


def test_viewers_see_the_result_but_no_button_and_no_link(client, world, experiment, finding):
    signed_in = sign_in(client, world.viewer, world.team)
    page = signed_in.get(reverse("experiment_detail", args=[experiment.pk])).content.decode()
    assert 'id="chart-lr-finder"' in page and 'id="lr-finder-suggested"' in page
    assert 'id="lr-finder-start"' not in page and 'id="lr-finder-use"' not in page


# --- the API ------------------------------------------------------------------------------------

def test_the_api_starts_one_and_reads_the_latest_with_its_figure(world, experiment, api_as):
    api, url = api_as(world.editor), reverse("api_lr_finder", args=[experiment.pk])
    assert url == f"/api/experiments/{experiment.pk}/lr-finder"
    none = api.get(url)
    assert none.status_code == 404 and "POST here to start one" in none.json()["error"]
    started = api.post(url)
    assert started.status_code == 201 and started.json()["status"] == "queued"
    again = api.post(url)
    assert again.status_code == 400 and "already queued or running" in again.json()["error"]
    assert "field" not in again.json()
    body = api.get(url).json()
    assert body["status"] == "queued" and body["lrs"] == [] and "figure" not in body
    lr_finding_run(finding_id=started.json()["id"], worker="w1@test")
    body = api_as(world.viewer).get(url).json()
    assert body["status"] == "succeeded" and len(body["lrs"]) == len(body["losses"]) and body["error"] == ""
    assert body["id"] == started.json()["id"] and body["experiment"] == experiment.pk and body["finished_at"]
    figure = body["figure"]
    assert figure["layout"]["xaxis"]["type"] == "log" and figure["data"][0]["x"] == body["lrs"]
    assert [s["x0"] for s in figure["layout"]["shapes"]] == [body["suggested_lr"]]


# --- who may do what ----------------------------------------------------------------------------

def test_outsider_gets_404_everywhere(client, world, experiment, finding, api_as):
    c = sign_in(client, world.outsider, world.team)
    assert c.post(reverse("lr_finder_start", args=[experiment.pk])).status_code == 404
    api, url = api_as(world.outsider), reverse("api_lr_finder", args=[experiment.pk])
    for answer in (api.get(url), api.post(url)):
        assert answer.status_code == 404 and answer.json() == {"error": "Not found."}
    assert LRFinding.objects.count() == 1


def test_viewer_gets_403_on_starting(client, world, experiment, api_as):
    c = sign_in(client, world.viewer, world.team)
    assert c.post(reverse("lr_finder_start", args=[experiment.pk])).status_code == 403
    answer = api_as(world.viewer).post(reverse("api_lr_finder", args=[experiment.pk]))
    assert answer.status_code == 403 and "only editors and owners" in answer.json()["error"]
    assert not LRFinding.objects.exists()


def test_the_owner_may_start_one(world, experiment, api_as):
    assert api_as(world.owner).post(reverse("api_lr_finder", args=[experiment.pk])).status_code == 201


def test_anonymous_is_sent_to_login_or_told_to_sign_in(client, experiment, api_as):
    answer = client.post(reverse("lr_finder_start", args=[experiment.pk]))
    assert answer.status_code == 302 and answer.url.startswith(reverse("login"))
    assert client.get(reverse("lr_finder_start", args=[experiment.pk])).url.startswith(reverse("login"))
    api, url = api_as(None), reverse("api_lr_finder", args=[experiment.pk])
    assert api.get(url).status_code == 401 and api.post(url).status_code == 401
    assert not LRFinding.objects.exists()


def test_starting_is_post_only(client, world, experiment):
    signed_in = sign_in(client, world.editor, world.team)
    assert signed_in.get(reverse("lr_finder_start", args=[experiment.pk])).status_code == 405
