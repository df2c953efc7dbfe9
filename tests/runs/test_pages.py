import pytest
from django.urls import reverse

from apps.experiments.models import Experiment
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.support.factories import form_data, sign_in

pytestmark = pytest.mark.django_db


def test_run_page_shows_charts_diagnosis_and_evaluation(client, world, finished_run):
    page = sign_in(client, world.viewer, world.team).get(reverse("run_detail", args=[finished_run.pk])).content.decode()
    for element in ["chart-loss", "chart-accuracy", "chart-gap", "chart-lr", "chart-confusion", "per-class",
                    "diagnosis-message", "live-traces"]:
        assert f'id="{element}"' in page, element
    assert 'id="cancel-run"' not in page  # finished, and a viewer


def test_run_list_filters_and_compare(client, world, finished_run, experiment):
    second = run_start(experiment=experiment, user=world.owner)
    c = sign_in(client, world.viewer, world.team)
    page = c.get(reverse("run_list"), {"status": "queued"}).content.decode()
    assert f'data-run="{second.pk}"' in page and f'data-run="{finished_run.pk}"' not in page
    page = c.get(reverse("run_compare"), {"ids": [finished_run.pk, second.pk]}).content.decode()
    assert 'id="chart-loss"' in page and "run " + str(second.pk) in page


def test_home_shows_the_queue(client, world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    page = sign_in(client, world.viewer, world.team).get(reverse("home")).content.decode()
    assert f'data-run="{run.pk}"' in page.split('id="queue"')[1].split('id="recent-runs"')[0]


def test_cancel_rerun_and_notes_from_the_page(client, world, finished_run):
    c = sign_in(client, world.editor, world.team)
    c.post(reverse("run_rerun", args=[finished_run.pk]))
    rerun = Run.objects.exclude(pk=finished_run.pk).get()
    assert rerun.config == finished_run.config and rerun.status == "queued"
    c.post(reverse("run_cancel", args=[rerun.pk]))
    rerun.refresh_from_db()
    assert rerun.status == "cancelled"
    c.post(reverse("run_annotate", args=[finished_run.pk]), {"notes": "good", "tags": "a, b"})
    finished_run.refresh_from_db()
    assert finished_run.notes == "good" and finished_run.tags == ["a", "b"]


def test_outsider_gets_404_on_every_page(client, world, finished_run):
    c = sign_in(client, world.outsider, world.team)
    for url in [reverse("experiment_detail", args=[finished_run.experiment_id]),
                reverse("run_detail", args=[finished_run.pk]),
                reverse("experiment_create") + f"?from_run={finished_run.pk}"]:
        assert c.get(url).status_code == 404, url
    for url in [reverse("run_cancel", args=[finished_run.pk]), reverse("run_rerun", args=[finished_run.pk]),
                reverse("run_annotate", args=[finished_run.pk]),
                reverse("experiment_start_run", args=[finished_run.experiment_id])]:
        assert c.post(url).status_code == 404, url
    assert Run.objects.count() == 1


def test_viewer_gets_403_on_every_action(client, world, finished_run, dataset):
    c = sign_in(client, world.viewer, world.team)
    assert c.get(reverse("experiment_create")).status_code == 403
    assert c.post(reverse("experiment_create"), form_data(dataset)).status_code == 403
    for url in [reverse("run_cancel", args=[finished_run.pk]), reverse("run_rerun", args=[finished_run.pk]),
                reverse("run_annotate", args=[finished_run.pk]),
                reverse("experiment_start_run", args=[finished_run.experiment_id])]:
        assert c.post(url).status_code == 403, url
    assert Run.objects.count() == 1 and Experiment.objects.count() == 1


def test_anonymous_is_sent_to_login(client, finished_run):
    for url in [reverse("experiment_list"), reverse("run_list"), reverse("run_detail", args=[finished_run.pk])]:
        assert client.get(url).url.startswith(reverse("login"))
