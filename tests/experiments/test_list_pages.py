"""The dataset and experiment lists by cursor (GET /api/datasets, GET /api/experiments and their pages):
stable when rows are added between pages, never another team's rows, and `?page=` still numbered."""
import pytest
from django.urls import reverse

from apps.datasets.models import Dataset
from apps.experiments.models import Experiment
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db


def make_datasets(team, count):
    return Dataset.objects.bulk_create([Dataset(team=team, name=f"d{i}") for i in range(count)])


def make_experiments(team, count):
    return Experiment.objects.bulk_create([Experiment(team=team, name=f"e{i}", config={"arch": "cnn"})
                                           for i in range(count)])


LISTS = [("/api/datasets", make_datasets, Dataset), ("/api/experiments", make_experiments, Experiment)]


def follow(api, url):
    seen = []
    while url:
        body = api.get(url).json()
        assert "count" not in body, "a cursor page counts nothing"
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    return seen


@pytest.mark.parametrize("url, make, model", LISTS)
def test_cursor_pages_neither_repeat_nor_lose_rows_added_between_them(world, api_as, url, make, model):
    originals = {r.pk for r in make(world.team, 13)}  # bulk-created: many share a `created`, so ids break ties
    foreign = {r.pk for r in make(world.other_team, 4)}
    api = api_as(world.viewer)
    first = api.get(f"{url}?page_size=4").json()
    assert len(first["results"]) == 4 and first["next"] and first["previous"] is None
    added = {r.pk for r in make(world.team, 5)}  # newer than every row shown: they belong before the first page
    rest = follow(api, first["next"])
    shown = [r["id"] for r in first["results"]] + rest
    assert len(shown) == len(set(shown)), "a row was shown twice"
    assert set(shown) == originals, "a row there from the start vanished, or a row added since slipped in"
    assert not set(shown) & (foreign | added)
    newest = follow(api, f"{url}?page_size=50")
    assert set(newest) == originals | added and newest == sorted(newest, reverse=True)
    outsider = follow(api_as(world.outsider), f"{url}?page_size=2")
    assert set(outsider) == foreign


@pytest.mark.parametrize("url, make, model", LISTS)
def test_previous_links_and_numbered_pages_for_old_clients(world, api_as, url, make, model):
    make(world.team, 12)
    make(world.other_team, 3)
    api = api_as(world.viewer)
    page1 = api.get(f"{url}?page_size=5").json()
    page2 = api.get(page1["next"]).json()
    assert api.get(page2["previous"]).json()["results"] == page1["results"]
    numbered = api.get(f"{url}?page=2&page_size=5").json()
    assert numbered["count"] == 12 and numbered["results"] == page2["results"]
    assert api.get(f"{url}?cursor=forged").status_code == 400


@pytest.mark.parametrize("name, make", [("dataset_list", make_datasets), ("experiment_list", make_experiments)])
def test_the_list_pages_go_older_and_newer_by_cursor_within_the_team(client, world, name, make):
    mine = make(world.team, 60)
    theirs = make(world.other_team, 3)
    c = sign_in(client, world.viewer, world.team)
    page = c.get(reverse(name)).content.decode()
    assert 'id="older"' in page and 'id="newer"' not in page and "50 " in page
    older = page.split('id="older"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    rest = c.get(reverse(name) + older).content.decode()
    assert 'id="newer"' in rest and 'id="older"' not in rest
    shown = page + rest
    link = "datasets" if name == "dataset_list" else "experiments"
    assert all(f'/{link}/{r.pk}/"' in shown for r in mine)
    assert not any(f'/{link}/{r.pk}/"' in shown for r in theirs)
    assert c.get(reverse(name), {"cursor": "forged"}).status_code == 200
