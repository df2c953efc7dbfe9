"""Where the model looked, seen in the browser: the predict page's heatmap and stages, the run's
misclassified images with their two heatmaps, and the first layer's filters."""
import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.test_versions import mislabelled_zip
from tests.support.browser import switch_team
from tests.support.factories import OPTIONS, QUICK, make_experiment, trained_run
from tests.support.services import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def squares_run(world, tmp_path):
    from apps.datasets.ingest import dataset_ingest
    from apps.datasets.models import Dataset
    from apps.datasets.services import dataset_create

    dataset = dataset_create(team=world.team, user=world.owner, name="Squares", options=OPTIONS,
                             source_path=mislabelled_zip(tmp_path / "squares.zip"))
    dataset_ingest(dataset_id=dataset.pk)
    # A worker of the session's stack may have claimed the ingest first.
    wait_until(lambda: Dataset.objects.filter(pk=dataset.pk, status="ready").exists(), timeout=120,
               message="the dataset to be ingested")
    dataset = Dataset.objects.get(pk=dataset.pk)
    run = trained_run(make_experiment(world.team, world.owner, dataset, {**QUICK, "epochs": 4}), world.owner)
    assert run.evaluation.misclassified
    return run


def test_heatmaps_on_the_predict_page_and_beside_misclassified_images(page, live_server, sign_in, world, tmp_path):
    run = squares_run(world, tmp_path)
    picture = tmp_path / "half.png"
    pixels = np.full((48, 48), 20, np.uint8)
    pixels[:, 24:] = 235
    Image.fromarray(pixels, mode="L").save(picture)

    sign_in(page, "vera", world.password)  # a viewer may look inside
    switch_team(page, world.team.slug)
    page.goto(f"{live_server.url}/runs/{run.pk}/predict")
    page.check("#explain-toggle")
    page.set_input_files("#predict-files", str(picture))
    page.click("#predict-submit")
    heatmap = page.locator(".prediction .heatmap img")
    expect(heatmap).to_have_count(1)
    expect(heatmap).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    expect(page.locator(".prediction .heatmap .hint")).to_contain_text("where it looked for")
    page.select_option("#explain-class", "light")
    expect(page.locator(".prediction .heatmap .hint")).to_have_text("where it looked for light")
    page.click(".look-inside")
    expect(page.locator("#inside")).to_be_visible()
    assert page.locator("#inside-stages .stage").count() >= 2
    page.screenshot(path=str(tmp_path / "predict-heatmap.png"), full_page=True)

    page.goto(f"{live_server.url}/runs/{run.pk}/")
    expect(page.locator("#first-filters")).to_have_js_property("complete", True)
    assert page.locator("#first-filters").evaluate("img => img.naturalWidth") > 0
    page.click("#show-cams")
    first = page.locator("#misclassified figure").first
    expect(first.locator("img.cam")).to_have_count(2)
    for i in range(2):
        expect(first.locator("img.cam").nth(i)).to_be_visible()
        expect(first.locator("img.cam").nth(i)).to_have_attribute("src", re.compile(r"^data:image/png"))
    expect(page.locator("#show-cams")).to_have_text("Heatmaps shown")
    page.locator("#evaluation").screenshot(path=str(tmp_path / "misclassified-heatmaps.png"))
