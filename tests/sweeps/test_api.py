"""The sweeps API: a sweep started over HTTP queues its first trials; every refusal is a 400 naming its field;
viewers may read but not write, and an outsider sees nothing (404)."""
import pytest
from django.urls import reverse

from apps.runs.models import Run
from apps.sweeps.models import Sweep
from apps.sweeps.services import sweep_create
from tests.support.factories import QUICK, make_experiment, ready_dataset

pytestmark = pytest.mark.django_db

LR = {"lr": {"log_uniform": [1e-4, 1e-1]}}


@pytest.fixture
def quick(world, dataset):
    return make_experiment(world.team, world.editor, dataset, QUICK)


def body(experiment, **changes):
    return {"name": "lr sweep", "experiment": experiment.pk, "method": "random", "parameters": LR, "trials": 4,
            "max_parallel": 2, "metric": "val_acc", "early_stop": None, **changes}


def post(api, data):
    return api.post(reverse("api_sweeps"), data, format="json")


def test_a_sweep_started_over_the_api_queues_max_parallel_trials(world, quick, api_as):
    answer = post(api_as(world.editor), body(quick, early_stop={"method": "asha", "min_epochs": 1,
                                                                "reduction_factor": 2}))
    assert answer.status_code == 201, answer.content
    assert answer.json()["status"] == "running"
    sweep = Sweep.objects.get(pk=answer.json()["id"])
    assert (sweep.team, sweep.experiment, sweep.created_by, sweep.trials) == (world.team, quick, world.editor, 4)
    assert sweep.early_stop == {"method": "asha", "min_epochs": 1, "reduction_factor": 2}
    runs = list(Run.objects.filter(sweep=sweep).order_by("trial_number"))
    assert [(r.trial_number, r.status) for r in runs] == [(0, "queued"), (1, "queued")]
    for run in runs:  # each trial is a run of the experiment with the drawn value
        assert 1e-4 <= run.trial_params["lr"] <= 1e-1 and run.config["lr"] == run.trial_params["lr"]

    detail = api_as(world.viewer).get(reverse("api_sweep", args=[sweep.pk]))
    assert detail.status_code == 200, detail.content
    data = detail.json()
    assert {k: data[k] for k in ("id", "name", "experiment", "status", "method", "metric")} == {
        "id": sweep.pk, "name": "lr sweep", "experiment": quick.pk, "status": "running", "method": "random",
        "metric": "val_acc"}
    assert [(t["run"], t["params"], t["status"], t["best_val_acc"], t["epochs_trained"], t["pruned"])
            for t in data["trials"]] == [(r.pk, r.trial_params, "queued", None, 0, False) for r in runs]
    assert data["best_run"] is None and data["epochs_trained"] == 0
    assert data["epochs_budget"] == 4 * QUICK["epochs"]


def test_seed_may_be_swept(world, quick, api_as):
    answer = post(api_as(world.editor), body(quick, method="grid", parameters={"seed": {"values": [1, 2, 3]}},
                                             max_parallel=3))
    assert answer.status_code == 201, answer.content
    runs = Run.objects.filter(sweep_id=answer.json()["id"]).order_by("trial_number")
    assert [r.config["seed"] for r in runs] == [1, 2, 3]


def test_a_grid_of_1000_trials_is_allowed(world, quick, api_as):
    answer = post(api_as(world.editor), body(quick, method="grid", parameters={
        "epochs": {"int": [1, 25]}, "batch_size": {"int": [2, 41]}}))
    assert answer.status_code == 201, answer.content
    assert Sweep.objects.get(pk=answer.json()["id"]).trials == 1000


# Each bad request, and the field its 400 must name.
GRID_OVER_1000 = {"epochs": {"int": [1, 40]}, "batch_size": {"int": [2, 41]}}
REFUSED = {
    "unknown key": ({"parameters": {"nosuch": {"values": [1, 2]}}}, "parameters.nosuch"),
    "unknown nested key": ({"parameters": {"augment.nosuch": {"values": [True]}}}, "parameters.augment.nosuch"),
    "device": ({"parameters": {"device": {"values": ["cpu", "cuda"]}}}, "parameters.device"),
    "empty range": ({"parameters": {"lr": {"uniform": [0.01, 0.01]}}}, "parameters.lr"),
    "inverted range": ({"parameters": {"lr": {"uniform": [0.1, 0.01]}}}, "parameters.lr"),
    "log range touching 0": ({"parameters": {"lr": {"log_uniform": [0, 0.1]}}}, "parameters.lr"),
    "no values": ({"parameters": {"optimizer": {"values": []}}}, "parameters.optimizer"),
    "a value the run refuses": ({"parameters": {"optimizer": {"values": ["adam", "nosuch"]}}},
                                "parameters.optimizer"),
    "a float range over whole numbers": ({"parameters": {"epochs": {"uniform": [1, 5]}}}, "parameters.epochs"),
    "a log range over whole numbers": ({"parameters": {"batch_size": {"log_uniform": [8, 64]}}},
                                       "parameters.batch_size"),
    "not a space": ({"parameters": {"lr": [0.1, 0.01]}}, "parameters.lr"),
    "no parameters": ({"parameters": {}}, "parameters"),
    "grid over 1,000 trials": ({"method": "grid", "parameters": GRID_OVER_1000}, "parameters"),
    "max_parallel 0": ({"max_parallel": 0}, "max_parallel"),
    "trials 0": ({"trials": 0}, "trials"),
    "unknown metric": ({"metric": "test_acc"}, "metric"),
    "unknown early stop": ({"early_stop": {"method": "median"}}, "early_stop"),
    "early stop of 0 epochs": ({"early_stop": {"method": "asha", "min_epochs": 0, "reduction_factor": 3}},
                               "early_stop.min_epochs"),
    "early stop factor 1": ({"early_stop": {"method": "asha", "min_epochs": 1, "reduction_factor": 1}},
                            "early_stop.reduction_factor"),
    "unknown method": ({"method": "bayes"}, "method"),
}


@pytest.mark.parametrize("changes, field", REFUSED.values(), ids=REFUSED.keys())
def test_every_refusal_is_a_400_naming_its_field_and_starts_nothing(world, quick, api_as, changes, field):
    answer = post(api_as(world.editor), body(quick, **changes))
    assert answer.status_code == 400, answer.content
    assert answer.json()["field"] == field, answer.json()
    assert answer.json()["error"].strip(), answer.json()
    assert not Sweep.objects.exists() and not Run.objects.exists()


def test_a_viewer_may_read_but_neither_start_nor_cancel(world, quick, api_as):
    api = api_as(world.viewer)
    answer = post(api, body(quick))
    assert answer.status_code == 403, answer.content
    assert not Sweep.objects.exists()

    sweep = sweep_create(user=world.editor, experiment=quick, name="s", method="random", parameters=LR, trials=3)
    assert api.get(reverse("api_sweep", args=[sweep.pk])).status_code == 200
    answer = api.post(reverse("api_sweep_cancel", args=[sweep.pk]))
    assert answer.status_code == 403, answer.content
    assert Sweep.objects.get(pk=sweep.pk).status == "running"
    assert set(Run.objects.filter(sweep=sweep).values_list("status", flat=True)) == {"queued"}


def test_an_outsider_finds_no_sweep_and_no_experiment(world, quick, api_as):
    sweep = sweep_create(user=world.editor, experiment=quick, name="s", method="random", parameters=LR, trials=3)
    api = api_as(world.outsider)
    assert api.get(reverse("api_sweep", args=[sweep.pk])).status_code == 404
    assert api.post(reverse("api_sweep_cancel", args=[sweep.pk])).status_code == 404
    assert Sweep.objects.get(pk=sweep.pk).status == "running"
    answer = post(api, body(quick))
    assert answer.status_code == 404, answer.content
    assert Sweep.objects.count() == 1
    assert api.get(reverse("api_sweep", args=[10**6])).status_code == 404


def test_cancel_is_202_and_ends_the_queued_trials(world, quick, api_as):
    sweep = sweep_create(user=world.editor, experiment=quick, name="s", method="random", parameters=LR, trials=3)
    answer = api_as(world.editor).post(reverse("api_sweep_cancel", args=[sweep.pk]))
    assert answer.status_code == 202, answer.content
    assert answer.json() == {"id": sweep.pk, "status": "cancelled"}
    assert set(Run.objects.filter(sweep=sweep).values_list("status", flat=True)) == {"cancelled"}


def test_the_list_shows_only_the_callers_teams_sweeps(world, quick, api_as, tmp_path):
    ours = [sweep_create(user=world.editor, experiment=quick, name=f"ours {i}", method="random", parameters=LR,
                         trials=1) for i in range(2)]
    theirs_dataset = ready_dataset(world.other_team, tmp_path / "theirs.zip", name="theirs")
    theirs_experiment = make_experiment(world.other_team, world.outsider, theirs_dataset, QUICK)
    theirs = sweep_create(user=world.outsider, experiment=theirs_experiment, name="theirs", method="random",
                          parameters=LR, trials=1)

    listed = api_as(world.viewer).get(reverse("api_sweeps"))
    assert listed.status_code == 200, listed.content
    assert listed.json()["count"] == 2
    assert [s["id"] for s in listed.json()["results"]] == [ours[1].pk, ours[0].pk]  # newest first
    assert [s["id"] for s in api_as(world.outsider).get(reverse("api_sweeps")).json()["results"]] == [theirs.pk]


def test_a_trials_run_says_its_sweep_and_whether_it_was_pruned(world, quick, api_as):
    sweep = sweep_create(user=world.editor, experiment=quick, name="s", method="random", parameters=LR, trials=1)
    trial = Run.objects.get(sweep=sweep)
    Run.objects.filter(pk=trial.pk).update(pruned=True)
    data = api_as(world.viewer).get(reverse("api_run", args=[trial.pk])).json()
    assert (data["sweep"], data["pruned"]) == (sweep.pk, True)
    ordinary = api_as(world.editor).post(reverse("api_run_start", args=[quick.pk]), {}, format="json").json()
    data = api_as(world.viewer).get(reverse("api_run", args=[ordinary["id"]])).json()
    assert (data["sweep"], data["pruned"]) == (None, False)
