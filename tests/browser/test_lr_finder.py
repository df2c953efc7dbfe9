import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import switch_team
from tests.support.factories import ready_dataset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_find_a_learning_rate_and_start_a_new_experiment_with_it(page, live_server, sign_in, world, celery_workers,
                                                                 tmp_path):
    from apps.experiments.services import experiment_create

    dataset = ready_dataset(world.team, tmp_path / "ld.zip")
    experiment = experiment_create(team=world.team, user=world.editor, name="needs a rate", dataset=dataset,
                                   config={"epochs": 3, "batch_size": 8, "hidden_units": [16]})
    sign_in(page, "eddie", world.password)
    switch_team(page, world.team.slug)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/")
    page.click("#lr-finder-start")
    expect(page.locator("#lr-finder-status")).to_have_text(re.compile("queued|running|succeeded"))

    # The section polls the API and the page reloads once the worker is done; then the chart is drawn.
    expect(page.locator("#chart-lr-finder .main-svg").first).to_be_visible(timeout=120_000)
    expect(page.locator("#lr-finder-status")).to_have_text("succeeded")
    assert page.evaluate("() => document.getElementById('chart-lr-finder').data[0].x.length") > 10
    assert page.evaluate("() => document.getElementById('chart-lr-finder').layout.xaxis.type") == "log"
    suggested = page.locator("#lr-finder-suggested").text_content()

    page.click("#lr-finder-use")
    page.wait_for_url(f"{live_server.url}/experiments/new?*")
    expect(page.locator("#id_lr")).to_have_value(str(float(suggested)))
    expect(page.locator("#id_name")).to_have_value("needs a rate (copy)")
