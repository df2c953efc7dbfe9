"""The run history at scale: cursor pages of GET /api/runs (stable when runs are added between pages),
search through the API (400 with the position; never another team's run), and streamed CSV exports."""
import csv
import io
import tracemalloc

import pytest

from apps.experiments.models import Experiment
from apps.runs import exports
from apps.runs.models import EpochMetric, Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_runs(world):
    experiment = Experiment.objects.create(team=world.team, name="sweepy", config={})

    def make(count, *, team=None, **fields):
        team = team or world.team
        exp = experiment if team == world.team else Experiment.objects.create(team=team, name="x", config={})
        rows = [Run(team=team, experiment=exp, arch="cnn", status="succeeded", epochs=3,
                    config={"lr": 0.001 * (i % 10 + 1), "optimizer": "adam" if i % 2 else "sgd",
                            "augment": {"hflip": bool(i % 3)}},
                    best_val_acc=fields.get("best_val_acc", round(0.5 + (i % 50) / 100, 2)), tags=["t"])
                for i in range(count)]
        return Run.objects.bulk_create(rows, batch_size=1000)
    return make


def follow(api, url):
    seen, pages = [], 0
    while url:
        body = api.get(url).json()
        assert set(body) >= {"results", "next"} and "count" not in body
        seen += [r["id"] for r in body["results"]]
        url, pages = body["next"], pages + 1
    return seen, pages


@pytest.mark.parametrize("ordering", ["-created", "-best_val_acc", "best_val_acc", "config.lr", "-config.lr"])
def test_cursor_pages_neither_repeat_nor_lose_runs_added_between_them(world, api_as, make_runs, ordering):
    make_runs(23)
    api = api_as(world.viewer)
    first = api.get(f"/api/runs?page_size=5&ordering={ordering}").json()
    assert len(first["results"]) == 5 and first["next"]
    make_runs(7)  # added after the first page: as new, and at every accuracy and lr the others have
    rest, pages = follow(api, first["next"])
    assert pages >= 4
    shown = [r["id"] for r in first["results"]] + rest
    assert len(shown) == len(set(shown)), "a run was shown twice"
    originals = set(Run.objects.order_by("pk").values_list("pk", flat=True)[:23])
    assert originals <= set(shown), "a run that was there from the start vanished"


def test_previous_links_walk_back_and_old_clients_still_get_numbered_pages(world, api_as, make_runs):
    make_runs(12)
    api = api_as(world.viewer)
    page1 = api.get("/api/runs?page_size=5").json()
    page2 = api.get(page1["next"]).json()
    assert api.get(page2["previous"]).json()["results"] == page1["results"]
    assert page1.get("previous") is None
    numbered = api.get("/api/runs?page=2&page_size=5").json()
    assert numbered["count"] == 12 and numbered["results"] == page2["results"]
    assert len(api.get("/api/runs?page_size=100000").json()["results"]) == 12  # bounded at 200
    assert api.get("/api/runs?cursor=not-a-cursor").status_code == 400


def test_a_search_is_scoped_and_a_bad_one_names_the_position(world, api_as, make_runs):
    make_runs(6)
    foreign = make_runs(3, team=world.other_team)
    api = api_as(world.viewer)
    body = api.get("/api/runs", {"q": "config.optimizer = adam and config.lr <= 0.01"}).json()
    assert len(body["results"]) == 3 and not {r["id"] for r in body["results"]} & {r.pk for r in foreign}
    outsider = api_as(world.outsider).get("/api/runs", {"q": "tag = t"}).json()
    assert {r["id"] for r in outsider["results"]} == {r.pk for r in foreign}
    bad = api.get("/api/runs", {"q": "config.lr 0.01"})
    assert bad.status_code == 400 and bad.json()["field"] == "q"
    assert "expected an operator after 'config.lr' at position 10" in bad.json()["error"]
    assert api.get("/api/runs", {"ordering": "name"}).status_code == 400


def test_export_streams_the_searched_runs_with_config_columns(world, api_as, make_runs):
    make_runs(4)
    make_runs(2, team=world.other_team)
    response = api_as(world.viewer).get("/api/runs/export.csv", {"q": "config.optimizer = sgd"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2 and {r["config.optimizer"] for r in rows} == {"sgd"}
    header = list(rows[0])
    assert header.index("config.augment.hflip") < header.index("best_val_acc")
    assert rows[0]["config.augment.hflip"] in ("true", "false")
    assert api_as(world.viewer).get("/api/runs/export.csv", {"q": "lr <"}).status_code == 400


def test_metrics_csv_of_a_run_and_404_for_an_outsider(world, api_as, make_runs):
    run = make_runs(1)[0]
    EpochMetric.objects.bulk_create([EpochMetric(run=run, epoch=e, val_acc=e / 10, train_loss=1 / e) for e in (1, 2)])
    response = api_as(world.viewer).get(f"/api/runs/{run.pk}/metrics.csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("epoch,") and len(lines) == 3
    assert api_as(world.outsider).get(f"/api/runs/{run.pk}/metrics.csv").status_code == 404


def test_exporting_ten_thousand_runs_holds_a_chunk_not_the_history(world, api_as, make_runs):
    make_runs(10_000)
    api = api_as(world.viewer)
    response = api.get("/api/runs/export.csv")
    tracemalloc.start()
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lines == 10_001
    tracemalloc.start()
    held = list(Run.objects.values_list(*exports._READ))
    _, holding = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(held) == 10_000
    # Streamed, the export holds a chunk of rows at a time: well under what holding them all takes.
    assert peak < holding / 3, (peak, holding)


# --- the runs page ---------------------------------------------------------------------------------


def test_the_page_searches_pages_by_cursor_and_says_where_a_search_is_wrong(client, world, make_runs):
    from django.urls import reverse

    from tests.support.factories import sign_in
    runs = make_runs(60)
    c = sign_in(client, world.viewer, world.team)
    page = c.get(reverse("run_list")).content.decode()
    assert page.count("data-run=") == 50 and 'id="older"' in page and "of the" not in page
    older = page.split('id="older"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    rest = c.get(reverse("run_list") + older).content.decode()
    assert rest.count("data-run=") == 10 and 'id="newer"' in rest and 'id="older"' not in rest
    found = c.get(reverse("run_list"), {"q": "config.lr = 0.001 and config.optimizer = sgd"}).content.decode()
    assert found.count("data-run=") == 6  # i in 0, 10, ..., 50
    bad = c.get(reverse("run_list"), {"q": "config.lr 0.01"}).content.decode()
    assert 'id="search-error"' in bad and "at position 10" in bad
    export = c.get(reverse("run_export"), {"q": "config.optimizer = sgd"})
    assert b"".join(export.streaming_content).decode().count("\n") == 31
    compared = c.get(reverse("run_compare"), {"q": "config.optimizer = sgd", "n": 3}, follow=True).content.decode()
    best = sorted((r for r in runs if r.config["optimizer"] == "sgd"), key=lambda r: (-r.best_val_acc, -r.pk))[:3]
    assert "Compare 3 runs" in compared and all(f"run {r.pk}<" in compared for r in best)
