import pytest
from django.urls import reverse

from apps.experiments import services
from apps.experiments.config_form import SECTIONS
from apps.experiments.models import Experiment, Run
from apps.experiments.training import run_train
from tests.experiments.conftest import QUICK
from tests.support.web import login

pytestmark = pytest.mark.django_db






def form_data(dataset, **changes):
    data = {"name": "from the form", "dataset": dataset.pk, "arch": "smallcnn", "init": "default",
            "hidden_units": "32,16", "dropout": "0.25", "batch_norm": "on", "pretrained": "", "pretrained_run": "",
            "freeze_backbone_epochs": "0", "epochs": "3", "batch_size": "16", "optimizer": "adam", "lr": "0.001",
            "momentum": "0.9", "weight_decay": "0", "lr_schedule": "constant", "step_size": "5", "gamma": "0.1",
            "warmup_epochs": "0", "label_smoothing": "0", "early_stopping__patience": "0",
            "early_stopping__monitor": "val_loss", "normalize": "channel", "augment__crop_pad": "0",
            "augment__zoom": "0", "augment__rotate": "0", "augment__color_jitter": "0", "amp": "auto",
            "device": "auto", "seed": "0"}
    data.update(changes)
    return data


def test_the_form_has_every_config_key_with_help(client, world, dataset):
    page = login(client, world.editor, world).get(reverse("experiment_create")).content.decode()
    for _, keys in SECTIONS:
        for key, _, help_text in keys:
            assert f'name="{key}"' in page, key
            assert help_text.split()[0] in page
    assert "Light and dark" in page


def test_presets_and_clones_fill_the_form(client, world, dataset, finished_run):
    c = login(client, world.editor, world)
    page = c.get(reverse("experiment_create") + "?preset=resnet18").content.decode()
    assert 'value="resnet18" selected' in page and 'value="cosine" selected' in page
    page = c.get(reverse("experiment_create") + f"?from_run={finished_run.pk}").content.decode()
    assert f"(from run {finished_run.pk})" in page and 'value="16"' in page


def test_creating_from_the_form_and_starting_a_run(client, world, dataset):
    c = login(client, world.editor, world)
    response = c.post(reverse("experiment_create"), form_data(dataset, augment__hflip="on", start="1"))
    experiment = Experiment.objects.get(name="from the form")
    run = experiment.runs.get()
    assert response.url == reverse("run_detail", args=[run.pk])
    assert experiment.config["hidden_units"] == [32, 16] and experiment.config["augment"]["hflip"] is True
    assert experiment.config["batch_norm"] is True and experiment.config["pretrained"] is None


def test_a_bad_value_is_shown_beside_its_field(client, world, dataset):
    c = login(client, world.editor, world)
    response = c.post(reverse("experiment_create"), form_data(dataset, lr="-1"))
    assert response.status_code == 200 and b'data-field="lr"' in response.content
    response = c.post(reverse("experiment_create"), form_data(dataset, hidden_units="lots"))
    assert b'data-field="hidden_units"' in response.content
    assert not Experiment.objects.exists()


def test_run_page_shows_charts_diagnosis_and_evaluation(client, world, finished_run):
    page = login(client, world.viewer, world).get(reverse("run_detail", args=[finished_run.pk])).content.decode()
    for element in ["chart-loss", "chart-accuracy", "chart-gap", "chart-lr", "chart-confusion", "per-class",
                    "diagnosis-message", "live-traces"]:
        assert f'id="{element}"' in page, element
    assert 'id="cancel-run"' not in page  # finished, and a viewer


def test_run_list_filters_and_compare(client, world, finished_run, experiment):
    second = services.run_start(experiment=experiment, user=world.owner)
    c = login(client, world.viewer, world)
    page = c.get(reverse("run_list"), {"status": "queued"}).content.decode()
    assert f'data-run="{second.pk}"' in page and f'data-run="{finished_run.pk}"' not in page
    page = c.get(reverse("run_compare"), {"ids": [finished_run.pk, second.pk]}).content.decode()
    assert 'id="chart-loss"' in page and "run " + str(second.pk) in page


def test_home_shows_the_queue(client, world, experiment):
    run = services.run_start(experiment=experiment, user=world.editor)
    page = login(client, world.viewer, world).get(reverse("home")).content.decode()
    assert f'data-run="{run.pk}"' in page.split('id="queue"')[1].split('id="recent-runs"')[0]


def test_cancel_rerun_and_notes_from_the_page(client, world, finished_run):
    c = login(client, world.editor, world)
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
    c = login(client, world.outsider, world)
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
    c = login(client, world.viewer, world)
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
