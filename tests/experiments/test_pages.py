import pytest
from django.urls import reverse

from apps.experiments.models import Experiment
from apps.experiments.forms import SECTIONS
from tests.support.factories import form_data, sign_in

pytestmark = pytest.mark.django_db


def test_the_form_has_every_config_key_with_help(client, world, dataset):
    page = sign_in(client, world.editor, world.team).get(reverse("experiment_create")).content.decode()
    for _, keys in SECTIONS:
        for key, _, help_text in keys:
            assert f'name="{key}"' in page, key
            assert help_text.split()[0] in page
    assert "Light and dark" in page


def test_presets_and_clones_fill_the_form(client, world, dataset, finished_run):
    c = sign_in(client, world.editor, world.team)
    page = c.get(reverse("experiment_create") + "?preset=resnet18").content.decode()
    assert 'value="resnet18" selected' in page and 'value="cosine" selected' in page
    page = c.get(reverse("experiment_create") + f"?from_run={finished_run.pk}").content.decode()
    assert f"(from run {finished_run.pk})" in page and 'value="16"' in page


def test_creating_from_the_form_and_starting_a_run(client, world, dataset):
    c = sign_in(client, world.editor, world.team)
    response = c.post(reverse("experiment_create"), form_data(dataset, augment__hflip="on", start="1"))
    experiment = Experiment.objects.get(name="from the form")
    run = experiment.runs.get()
    assert response.url == reverse("run_detail", args=[run.pk])
    assert experiment.config["hidden_units"] == [32, 16] and experiment.config["augment"]["hflip"] is True
    assert experiment.config["batch_norm"] is True and experiment.config["pretrained"] is None


def test_a_bad_value_is_shown_beside_its_field(client, world, dataset):
    c = sign_in(client, world.editor, world.team)
    response = c.post(reverse("experiment_create"), form_data(dataset, lr="-1"))
    assert response.status_code == 200 and b'data-field="lr"' in response.content
    response = c.post(reverse("experiment_create"), form_data(dataset, hidden_units="lots"))
    assert b'data-field="hidden_units"' in response.content
    assert not Experiment.objects.exists()


