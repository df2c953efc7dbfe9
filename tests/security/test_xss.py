"""Stored XSS: names people type (dataset, class folder, image file, experiment, run tags and notes,
weights file, team, username, token) set to script payloads are text on every page that shows them —
escaped in the HTML, inert in the figures' JSON (json_script) and in the labels Plotly draws
(`charts.label`). test_browser.py loads the same pages in Chromium, with the Content-Security-Policy on.
"""
import json
import re

import pytest

from dlstudio.chart_style import label
from tests.security.conftest import kwarg_values, world_for_the_module
from tests.security.routes import swept_routes

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
SVG = "<svg onload=alert(1)>"  # a folder name cannot hold the "/" of </script>
PAYLOADS = (SCRIPT, IMG, SVG)
# "<br>": a tag Plotly itself would act on (a line break), were the names not escaped for it.
NAMES = {"team": f"{SCRIPT} lab", "dataset": f"{SCRIPT} set", "experiment": f"{IMG}<br>exp", "weights": f"{SVG} w",
         "token": f"{IMG} token", "eddie": IMG, "sweep": f"{SVG} sweep"}
CLASSES = (IMG, f"<br>{SVG}")
NOTES, TAGS = f"notes {SCRIPT}", [SCRIPT, IMG]
FIRST_IMAGE = f"{IMG}.png"


def world_with_payloads(django_db_blocker, tmp_path_factory):
    return world_for_the_module(django_db_blocker, tmp_path_factory, classes=CLASSES, names=NAMES, runs=2,
                                first_image_name=FIRST_IMAGE)


def annotate(world):
    from apps.runs.services import run_annotate

    for run in world.runs:
        run_annotate(run=run, notes=NOTES, tags=TAGS)


@pytest.fixture(scope="module")
def objects(django_db_setup, django_db_blocker, tmp_path_factory):
    with world_with_payloads(django_db_blocker, tmp_path_factory) as world:
        annotate(world)
        yield world


def pages(o) -> dict:
    """Every page that shows one of the names, and what it shows."""
    run, other = o.runs
    return {
        "/": ["team", "experiment", "tags", "username"],
        "/datasets/": ["team", "dataset"],
        f"/datasets/{o.dataset.pk}/": ["dataset", "classes", "image"],
        "/experiments/": ["experiment", "dataset"],
        f"/experiments/{o.experiment.pk}/": ["experiment", "dataset", "tags", "username", "sweep"],
        f"/experiments/new?from_experiment={o.experiment.pk}": ["experiment", "dataset", "weights"],
        "/runs/": ["experiment", "dataset", "tags", "username"],
        f"/runs/{run.pk}/": ["experiment", "dataset", "classes", "notes", "tags"],
        f"/runs/compare?ids={run.pk},{other.pk}": ["experiment"],
        f"/runs/{run.pk}/predict": ["experiment", "classes"],
        "/weights/": ["weights", "username"],
        f"/teams/{o.team.slug}/": ["team", "username"],
        "/profile/": ["token"],
        f"/sweeps/{o.sweep.pk}/": ["sweep", "experiment"],
    }


def shown(o) -> dict:
    return {"team": [NAMES["team"]], "dataset": [NAMES["dataset"]], "experiment": [NAMES["experiment"]],
            "weights": [NAMES["weights"]], "token": [NAMES["token"]], "username": [IMG], "classes": list(CLASSES),
            "image": [FIRST_IMAGE], "notes": [NOTES], "tags": TAGS, "sweep": [NAMES["sweep"]]}


def figures_of(html: str) -> list:
    """The Plotly figures of a page: its json_script blocks that hold {"data": ...} (other blocks, such as the
    class names a version's preview reads, are plain data for scripts, never parsed by Plotly)."""
    blocks = [json.loads(body) for body in re.findall(r'<script id="[^"]+" type="application/json">(.*?)</script>',
                                                      html, re.S)]
    return [block for block in blocks if isinstance(block, dict) and "data" in block]


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def test_every_name_is_escaped_on_every_page_that_shows_it(objects, signed_in):
    from django.utils.html import escape

    client = signed_in(objects.owner)
    for url, what in pages(objects).items():
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for payload in PAYLOADS:
            assert payload not in html, (url, payload)
        for kind in what:
            for text in shown(objects)[kind]:
                assert escape(text) in html, (url, kind, text)


def test_no_page_of_the_url_configuration_carries_a_payload_raw(objects, signed_in):
    """The sweep above says what each page shows; this one covers every page there is, the day it is added."""
    client = signed_in(objects.owner)
    swept = 0
    for route in swept_routes():
        if "GET" not in route.methods or route.is_api:
            continue
        response = client.get(route.url(kwarg_values(objects)))
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        html = response.content.decode()
        for payload in PAYLOADS:
            assert payload not in html, (route.name, payload)
        swept += 1
    assert swept >= 15


def test_figures_carry_the_names_only_as_plotly_safe_text(objects, signed_in):
    client = signed_in(objects.owner)
    run, other = objects.runs
    checks = {
        f"/datasets/{objects.dataset.pk}/": CLASSES,
        f"/runs/{run.pk}/": CLASSES,                         # the confusion matrix and the per-class bars
        f"/runs/compare?ids={run.pk},{other.pk}": [NAMES["experiment"]],
    }
    for url, names in checks.items():
        html = client.get(url).content.decode()
        texts = [t for figure in figures_of(html) for t in strings_in(figure)]
        for name in names:
            assert any(label(name) in t for t in texts), (url, name)
            assert not any(name in t for t in texts), (url, name)  # never raw, where Plotly would parse it


def test_messages_and_refusals_naming_objects_are_escaped(objects, signed_in):
    viewer = signed_in(objects.viewer)
    refused = viewer.post(f"/runs/{objects.run.pk}/annotate")
    assert refused.status_code == 403 and SCRIPT not in refused.content.decode()
    assert "&lt;script&gt;" in refused.content.decode()  # "You are a viewer of <team>": the team, as text
    owner = signed_in(objects.owner)
    page = owner.post(f"/weights/{objects.weights.pk}/delete", follow=True).content.decode()
    assert "Deleted the weights file" in page and SVG not in page


def test_query_strings_are_not_reflected_as_html(objects, signed_in):
    client = signed_in(objects.owner)
    for url in (f"/runs/?arch={IMG}&creator={IMG}&tag={SCRIPT}", f"/datasets/{objects.dataset.pk}/?label={IMG}",
                f"/experiments/new?preset={SCRIPT}&lr={IMG}"):
        html = client.get(url).content.decode()
        assert IMG not in html and SCRIPT not in html, url
    from django.test import Client

    html = Client().get(f"/login/?next={IMG}").content.decode()
    assert IMG not in html


def test_the_api_answers_names_as_json_never_html(objects, api_as, signed_in):
    api = api_as(objects.viewer)
    for url in (f"/api/datasets/{objects.dataset.pk}", f"/api/runs/{objects.run.pk}", "/api/teams",
                f"/api/experiments/{objects.experiment.pk}"):
        response = api.get(url)
        assert response["Content-Type"] == "application/json" and response["X-Content-Type-Options"] == "nosniff"
    card = signed_in(objects.viewer).get(f"/runs/{objects.run.pk}/export/model-card")
    assert card["Content-Type"] == "application/json" and card["Content-Disposition"].startswith("attachment")
    assert IMG in card.json()["experiment"]
