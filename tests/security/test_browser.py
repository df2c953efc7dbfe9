"""In Chromium, with the Content-Security-Policy on: every page shows names set to script payloads as
literal text (in the HTML and in the charts Plotly draws), no dialog opens, and the console stays free of
errors — a CSP violation (an inline script or handler left somewhere) is one."""
import io

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.security.conftest import build_world
from tests.security.test_xss import CLASSES, IMG, NAMES, NOTES, SCRIPT, annotate
from tests.support.browser import switch_team

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(tmp_path):
    world = build_world(tmp_path, classes=CLASSES, names=NAMES, runs=2, first_image_name=f"{IMG}.png")
    annotate(world)
    return world


class Watch:
    """Dialogs, console errors and uncaught exceptions of a page, collected as it is used."""

    def __init__(self, page):
        self.dialogs, self.errors = [], []
        page.on("dialog", self._dialog)
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def charts_drawn(page):
    for chart in page.locator("[data-figure]").all():
        expect(chart).to_have_attribute("data-drawn", "true")


def test_payload_names_are_text_on_every_page_with_the_csp_on(page, live_server, sign_in, world):
    watch = Watch(page)
    run, other = world.runs
    response = page.goto(f"{live_server.url}/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    sign_in(page, world.owner.username, world.password)
    switch_team(page, world.team.slug)  # static/js/base.js, no inline handler

    visits = {
        "/": [NAMES["team"], NAMES["experiment"]],
        "/datasets/": [NAMES["dataset"]],
        f"/datasets/{world.dataset.pk}/": [NAMES["dataset"], *CLASSES],
        "/datasets/upload": [NAMES["team"]],
        "/experiments/": [NAMES["experiment"]],
        f"/experiments/{world.experiment.pk}/": [NAMES["experiment"], NAMES["dataset"], SCRIPT],
        f"/experiments/new?from_experiment={world.experiment.pk}": [NAMES["dataset"]],
        "/runs/": [NAMES["experiment"], IMG],
        f"/runs/{run.pk}/": [NAMES["experiment"], NAMES["dataset"], SCRIPT, IMG],
        f"/runs/compare?ids={run.pk},{other.pk}": [NAMES["experiment"]],
        f"/runs/{run.pk}/predict": [NAMES["experiment"]],
        "/weights/": [NAMES["weights"], IMG],
        "/weights/upload": [NAMES["team"]],
        f"/teams/{world.team.slug}/": [NAMES["team"], IMG],
        "/profile/": [NAMES["token"]],
    }
    for path, texts in visits.items():
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
        charts_drawn(page)
        body = page.locator("body").inner_text()
        for text in texts:
            assert text in body, (path, text)
        assert page.locator("img[src='x'], svg[onload], body script:not([src]):not([type='application/json'])"
                            ).count() == 0, path

    page.goto(f"{live_server.url}/runs/{run.pk}/")
    assert page.input_value("#run-notes") == NOTES and page.input_value("#run-tags") == f"{SCRIPT}, {IMG}"

    # The charts' labels, as Plotly drew them.
    page.goto(f"{live_server.url}/datasets/{world.dataset.pk}/")
    charts_drawn(page)
    assert set(page.locator("#classes-chart .xtick text").all_text_contents()) == set(CLASSES)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    charts_drawn(page)
    assert set(page.locator("#chart-confusion .xtick text").all_text_contents()) == set(CLASSES)
    assert set(page.locator("#chart-confusion .ytick text").all_text_contents()) == set(CLASSES)
    assert set(page.locator("#chart-per-class .xtick text").all_text_contents()) == set(CLASSES)
    page.goto(f"{live_server.url}/runs/compare?ids={run.pk},{other.pk}")
    charts_drawn(page)
    legend = page.locator("#chart-loss .legendtext").all_text_contents()
    assert any(NAMES["experiment"] in text for text in legend), legend

    # Predicting on the page: fetch, and the chosen image shown from a blob: URL, within the policy.
    out = io.BytesIO()
    Image.fromarray(np.full((8, 8), 40, np.uint8), mode="L").save(out, format="PNG")
    page.goto(f"{live_server.url}/runs/{run.pk}/predict")
    page.set_input_files("#predict-files", files=[{"name": f"{IMG}.png", "mimeType": "image/png",
                                                   "buffer": out.getvalue()}])
    page.click("#predict-submit")
    expect(page.locator(".prediction")).to_have_count(1)
    expect(page.locator(".prediction-name")).to_have_text(f"{IMG}.png")

    assert watch.dialogs == [] and watch.errors == []

    # The 404 page under the same policy: the only console line is the 404 itself.
    response = page.goto(f"{live_server.url}/no/such/page/")
    assert response.status == 404 and "content-security-policy" in response.headers
    expect(page.locator("h1")).to_have_text("Not found")
    assert [e for e in watch.errors if "404" not in e] == []


def test_a_confirmation_still_asks_before_deleting(page, live_server, sign_in, world):
    """The dataset's delete form asks through static/js/base.js (data-confirm) now that the inline
    onsubmit is gone; dismissing the question keeps the dataset."""
    from apps.datasets.models import Dataset

    watch = Watch(page)
    sign_in(page, world.owner.username, world.password)
    switch_team(page, world.team.slug)  # static/js/base.js, no inline handler
    page.goto(f"{live_server.url}/datasets/{world.dataset.pk}/")
    page.click("text=Delete dataset")
    expect(page.locator("h1")).to_have_text(NAMES["dataset"])
    assert watch.dialogs == ["Delete this dataset and its packed images?"]
    assert Dataset.objects.filter(pk=world.dataset.pk).exists() and watch.errors == []
