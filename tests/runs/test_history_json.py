"""JSON exports of the run history (the CSV's rows, config as an object; streamed), and the runs page's
count: a per-team count reused for a minute and labelled with the time it was taken."""
import csv
import io
import json
import tracemalloc

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.runs import exports
from apps.runs.models import EpochMetric, Run
from tests.runs.test_history import make_runs  # noqa: F401 (a fixture)
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db


def body_of(response):
    return b"".join(response.streaming_content).decode()


def test_json_export_parses_and_matches_the_csv_rows(world, api_as, make_runs):  # noqa: F811
    make_runs(5)
    make_runs(2, team=world.other_team)
    api = api_as(world.viewer)
    response = api.get("/api/runs/export.json", {"q": "config.optimizer = sgd"})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    runs = json.loads(body_of(response))
    rows = list(csv.DictReader(io.StringIO(body_of(api.get("/api/runs/export.csv", {"q": "config.optimizer = sgd"})))))
    assert len(runs) == len(rows) == 3
    for run, row in zip(runs, rows):
        assert str(run["id"]) == row["id"] and run["status"] == row["status"] and run["tags"] == ["t"]
        assert run["config"]["optimizer"] == row["config.optimizer"] == "sgd"
        assert run["config"]["augment"]["hflip"] is (row["config.augment.hflip"] == "true")
        assert str(run["best_val_acc"]) == row["best_val_acc"] and str(run["epochs"]) == row["epochs"]
    assert not {r["id"] for r in runs} & set(Run.objects.filter(team=world.other_team).values_list("pk", flat=True))
    assert api.get("/api/runs/export.json", {"q": "lr <"}).status_code == 400
    assert json.loads(body_of(api.get("/api/runs/export.json", {"q": "config.optimizer = nadam"}))) == []


def test_metrics_json_of_a_run_and_404_for_an_outsider(world, api_as, make_runs):  # noqa: F811
    run = make_runs(1)[0]
    EpochMetric.objects.bulk_create([EpochMetric(run=run, epoch=e, val_acc=e / 10, train_loss=1 / e) for e in (1, 2)])
    epochs = json.loads(body_of(api_as(world.viewer).get(f"/api/runs/{run.pk}/metrics.json")))
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[1]["val_acc"] == 0.2
    assert api_as(world.outsider).get(f"/api/runs/{run.pk}/metrics.json").status_code == 404


def test_json_export_of_ten_thousand_runs_holds_a_chunk_not_the_history(world, api_as, make_runs):  # noqa: F811
    make_runs(10_000)
    response = api_as(world.viewer).get("/api/runs/export.json")
    tracemalloc.start()
    text = []
    for chunk in response.streaming_content:
        text.append(len(chunk))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(text) == 10_000 + 2  # "[", a run each, "]"
    tracemalloc.start()
    held = list(Run.objects.values_list(*exports._READ))
    _, holding = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(held) == 10_000
    assert peak < holding / 3, (peak, holding)


def test_the_page_links_json_and_labels_a_count_taken_at_most_a_minute_ago(client, world, make_runs):  # noqa: F811
    caches["local"].clear()
    make_runs(7)
    make_runs(4, team=world.other_team)
    c = sign_in(client, world.viewer, world.team)
    page = c.get(reverse("run_list")).content.decode()
    assert 'id="export-json"' in page and "About 7 runs in the team's history (counted at " in page
    make_runs(2)
    with CaptureQueriesContext(connection) as queries:
        again = c.get(reverse("run_list")).content.decode()
    assert "About 7 runs" in again, "a page view within the minute reuses the count"
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper() and "runs_run" in q["sql"]]
    caches["local"].clear()
    assert "About 9 runs" in c.get(reverse("run_list")).content.decode()
    exported = json.loads(body_of(c.get(reverse("run_export_json"), {"q": "config.optimizer = sgd"})))
    assert len(exported) == 5  # i in 0, 2, 4, 6, 8 of the team's nine


def test_the_filter_menus_offer_the_newest_and_the_chosen_one_not_every_one(client, world):
    from apps.experiments.models import Experiment
    from apps.runs.views import FILTER_CHOICES

    made = Experiment.objects.bulk_create([Experiment(team=world.team, name=f"e{i}", config={})
                                           for i in range(FILTER_CHOICES + 5)])
    c = sign_in(client, world.viewer, world.team)
    menu = c.get(reverse("run_list")).content.decode().split('id="f-experiment"')[1].split("</select>")[0]
    assert menu.count("<option") == FILTER_CHOICES + 1  # "any" and the newest
    oldest = min(e.pk for e in made)
    assert f'value="{oldest}"' not in menu
    chosen = c.get(reverse("run_list"), {"experiment": oldest}).content.decode()
    menu = chosen.split('id="f-experiment"')[1].split("</select>")[0]
    assert f'<option value="{oldest}" selected>' in menu
