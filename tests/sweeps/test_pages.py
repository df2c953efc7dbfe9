"""The sweep pages through the Django test client: start one from the experiment page, watch it, cancel
it, adopt its best config; who may do which."""
import json

import pytest
from django.urls import reverse

from apps.experiments.models import Experiment
from apps.runs.models import Run
from apps.runs.training import run_train
from apps.sweeps.models import Sweep
from apps.sweeps.services import sweep_advance, sweep_create
from tests.support.factories import QUICK, make_experiment, sign_in

pytestmark = pytest.mark.django_db

LR_GRID = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]


def start_data(**changes):
    data = {"name": "which lr", "preset": "lr", "method": "grid", "parameters": "", "trials": "10",
            "max_parallel": "2", "metric": "val_acc", "min_epochs": "1", "reduction_factor": "3", "seed": "0"}
    data.update(changes)
    return data


@pytest.fixture
def experiment(world, dataset):
    return make_experiment(world.team, world.editor, dataset, {**QUICK, "epochs": 2})


@pytest.fixture
def sweep(world, experiment):
    return sweep_create(user=world.editor, experiment=experiment, name="lr or optimizer", method="grid",
                        max_parallel=2, parameters={"lr": {"values": [0.01, 0.001]},
                                                    "optimizer": {"values": ["sgd", "adam"]}})


def presets_in(html: str) -> dict:
    return json.loads(html.split('id="sweep-presets" type="application/json">')[1].split("</script>")[0])


def train_to_the_end(sweep):
    while True:
        queued = Run.objects.filter(sweep=sweep, status="queued")
        if not queued.exists():
            if not sweep_advance(sweep.pk):
                break
            continue
        for run in queued:
            run_train(run_id=run.pk, worker="w@test")


def test_the_experiment_page_lists_sweeps_and_offers_the_form_to_editors_only(client, world, experiment, sweep):
    page = sign_in(client, world.editor, world.team).get(reverse("experiment_detail", args=[experiment.pk]))
    html = page.content.decode()
    assert 'id="sweeps"' in html and reverse("sweep_detail", args=[sweep.pk]) in html
    assert 'id="sweep-form"' in html and 'id="sweep-presets"' in html
    presets = presets_in(html)
    assert presets["lr"]["parameters"] == {"lr": {"values": LR_GRID}}
    # A smallcnn has no ImageNet weights and the experiment no finished run: transfer offers scratch only.
    assert presets["transfer"]["parameters"] == {"pretrained": {"values": [None]}}
    html = sign_in(client, world.viewer, world.team).get(reverse("experiment_detail", args=[experiment.pk]))
    html = html.content.decode()
    assert reverse("sweep_detail", args=[sweep.pk]) in html and 'id="sweep-form"' not in html


def test_the_transfer_preset_offers_the_experiments_best_run(client, world, experiment):
    from tests.support.factories import trained_run

    run = trained_run(experiment, world.editor)
    html = sign_in(client, world.editor, world.team).get(reverse("experiment_detail", args=[experiment.pk]))
    presets = presets_in(html.content.decode())
    assert presets["transfer"]["parameters"] == {"pretrained": {"values": [None, {"run": run.pk}]}}


def test_the_sweep_page_renders_for_every_member(client, world, sweep):
    for user in (world.owner, world.editor, world.viewer):
        response = sign_in(client, user, world.team).get(reverse("sweep_detail", args=[sweep.pk]))
        assert response.status_code == 200
        html = response.content.decode()
        for element in ("sweep-progress", "sweep-trials", "chart-overlay", "chart-parallel", "chart-scatter",
                        "chart-importance", "figure-overlay", "sweep-colour"):
            assert f'id="{element}"' in html, element
        assert ('id="cancel-sweep"' in html) == (user != world.viewer)
    assert "lr=0.01" in html and "optimizer=sgd" in html  # the trials queued so far, with their values


def test_the_charts_answer_json_coloured_by_the_choice(client, world, sweep):
    c = sign_in(client, world.viewer, world.team)
    answer = c.get(reverse("sweep_charts", args=[sweep.pk]), {"colour": "optimizer"}).json()
    assert answer["status"] == "running" and answer["colour"] == "optimizer"
    assert set(answer["figures"]) == {"overlay", "parallel", "scatter", "importance"}
    assert answer["figures"]["overlay"]["layout"]["legend"]["title"]["text"] == "optimizer"
    assert answer["progress"]["total"] == 4 and answer["progress"]["queued"] == 2
    assert 'id="sweep-trials"' in answer["table"]
    # An unknown choice falls back to the first parameter rather than failing.
    assert c.get(reverse("sweep_charts", args=[sweep.pk]), {"colour": "nope"}).json()["colour"] == "lr"


def test_an_outsider_gets_404_everywhere(client, world, experiment, sweep):
    c = sign_in(client, world.outsider, world.team)
    assert c.get(reverse("sweep_detail", args=[sweep.pk])).status_code == 404
    assert c.get(reverse("sweep_charts", args=[sweep.pk])).status_code == 404
    assert c.post(reverse("sweep_cancel", args=[sweep.pk])).status_code == 404
    assert c.post(reverse("sweep_adopt", args=[sweep.pk])).status_code == 404
    assert c.post(reverse("sweep_start", args=[experiment.pk]), start_data()).status_code == 404
    sweep.refresh_from_db()
    assert sweep.status == "running" and Sweep.objects.count() == 1


def test_a_viewer_gets_403_on_every_action(client, world, experiment, sweep):
    c = sign_in(client, world.viewer, world.team)
    assert c.post(reverse("sweep_start", args=[experiment.pk]), start_data()).status_code == 403
    assert c.post(reverse("sweep_cancel", args=[sweep.pk])).status_code == 403
    assert c.post(reverse("sweep_adopt", args=[sweep.pk])).status_code == 403
    sweep.refresh_from_db()
    assert sweep.status == "running" and Sweep.objects.count() == 1
    # Reading is not acting: GET on the actions is refused as a method, not served.
    assert c.get(reverse("sweep_cancel", args=[sweep.pk])).status_code == 405


def test_starting_from_a_preset_creates_the_sweep_with_the_presets_parameters(client, world, experiment):
    c = sign_in(client, world.editor, world.team)
    # Whatever the box holds, a preset other than "custom" searches the preset's space.
    response = c.post(reverse("sweep_start", args=[experiment.pk]), start_data(parameters="not even JSON"))
    sweep = Sweep.objects.get()
    assert response.status_code == 302 and response.url == reverse("sweep_detail", args=[sweep.pk])
    assert sweep.parameters == {"lr": {"values": LR_GRID}} and sweep.method == "grid" and sweep.trials == 6
    assert sweep.max_parallel == 2 and sweep.early_stop is None and sweep.created_by == world.editor
    assert Run.objects.filter(sweep=sweep).count() == 2


def test_a_custom_sweep_with_early_stopping(client, world, experiment):
    c = sign_in(client, world.editor, world.team)
    parameters = {"lr": {"log_uniform": [1e-4, 0.1]}, "optimizer": {"values": ["sgd", "adam"]}}
    c.post(reverse("sweep_start", args=[experiment.pk]), start_data(
        preset="custom", method="tpe", trials="5", parameters=json.dumps(parameters), early_stop="on",
        min_epochs="1", reduction_factor="2", seed="7"))
    sweep = Sweep.objects.get()
    assert (sweep.method, sweep.trials, sweep.seed, sweep.parameters) == ("tpe", 5, 7, parameters)
    assert sweep.early_stop == {"method": "asha", "min_epochs": 1, "reduction_factor": 2}


@pytest.mark.parametrize("changes, field, sentence", [
    ({"parameters": '{"lr": {"log_uniform": [0, 0.1]}}'}, "parameters", "a log range must stay above 0"),
    ({"parameters": '{"lr": {"log_uniform": [1e-4'}, "parameters", "The parameters are not JSON"),
    ({"parameters": '{"nope": {"values": [1, 2]}}'}, "parameters", "nope is not a config key"),
    ({"max_parallel": "0"}, "max_parallel", "max_parallel must be a whole number from 1 to 64."),
    ({"method": "random", "trials": "0"}, "trials", "trials must be a whole number from 1 to 1,000."),
    ({"early_stop": "on", "reduction_factor": "1"}, "reduction_factor", "reduction_factor must be a whole number"),
    ({"seed": "-1"}, "seed", "seed must be a whole number"),
])
def test_a_refused_setting_shows_its_sentence_beside_the_field_and_keeps_the_input(
        client, world, experiment, changes, field, sentence):
    c = sign_in(client, world.editor, world.team)
    data = start_data(**{"preset": "custom", "name": "kept <name>", "method": "random",
                         "parameters": '{"lr": {"log_uniform": [0.0001, 0.1]}}', **changes})
    response = c.post(reverse("sweep_start", args=[experiment.pk]), data)
    assert response.status_code == 200
    html = response.content.decode()
    error = html.split(f'<span class="field-error" data-field="{field}">')[1].split("</span>")[0]
    assert sentence in error.replace("&quot;", '"').replace("&#x27;", "'")
    assert 'value="kept &lt;name&gt;"' in html  # what was typed, escaped
    assert data["parameters"].replace('"', "&quot;") in html
    assert not Sweep.objects.exists() and not Run.objects.exists()


def test_adopt_makes_the_best_runs_config_the_experiments(client, world, experiment, sweep):
    train_to_the_end(sweep)
    sweep.refresh_from_db()
    assert sweep.status == "succeeded"
    runs = list(Run.objects.filter(sweep=sweep).order_by("trial_number"))
    best = max(runs, key=lambda r: r.best_val_acc)  # the first of equals, as the sweep's best is
    c = sign_in(client, world.editor, world.team)
    html = c.get(reverse("sweep_detail", args=[sweep.pk])).content.decode()
    assert f'href="{reverse("run_detail", args=[best.pk])}" id="best-run"' in html and 'id="adopt-best"' in html
    response = c.post(reverse("sweep_adopt", args=[sweep.pk]), follow=True)
    assert f"config of run {best.pk}" in response.content.decode()
    experiment = Experiment.objects.get(pk=experiment.pk)
    assert experiment.config == best.config
    assert (experiment.config["lr"], experiment.config["optimizer"]) == (best.trial_params["lr"],
                                                                          best.trial_params["optimizer"])


def test_adopt_before_any_result_says_why(client, world, sweep):
    response = sign_in(client, world.editor, world.team).post(reverse("sweep_adopt", args=[sweep.pk]), follow=True)
    assert "No trial has a result yet" in response.content.decode()


def test_cancel_from_the_page_ends_the_queued_trials(client, world, sweep):
    response = sign_in(client, world.editor, world.team).post(reverse("sweep_cancel", args=[sweep.pk]))
    assert response.status_code == 302 and response.url == reverse("sweep_detail", args=[sweep.pk])
    sweep.refresh_from_db()
    assert sweep.status == "cancelled"
    assert set(Run.objects.filter(sweep=sweep).values_list("status", flat=True)) == {"cancelled"}
    html = client.get(reverse("sweep_detail", args=[sweep.pk])).content.decode()
    assert 'id="cancel-sweep"' not in html
