import os
import re

import pytest
from playwright.sync_api import expect

from apps.experiments.models import Experiment
from apps.runs.models import Run
from tests.support.browser import switch_team

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_the_history_page_through_it_and_read_where_a_search_is_wrong(page, live_server, sign_in, world):
    experiment = Experiment.objects.create(team=world.team, name="sweepy", config={})
    Run.objects.bulk_create([
        Run(team=world.team, experiment=experiment, arch="cnn", status="succeeded", epochs=10, epoch=10,
            config={"lr": 0.001 * (i % 10 + 1), "optimizer": ("adam", "sgd")[i % 2]},
            best_val_acc=0.5 + i / 200, created_by=world.editor) for i in range(70)])
    sign_in(page, "vera", world.password)
    switch_team(page, world.team.slug)
    page.goto(f"{live_server.url}/runs/")
    expect(page.locator("tr[data-run]")).to_have_count(50)
    page.click("#older")
    expect(page.locator("tr[data-run]")).to_have_count(20)
    page.click("#newer")
    expect(page.locator("tr[data-run]")).to_have_count(50)

    page.fill("#f-q", "config.lr < 0.003 and config.optimizer = adam and best_val_acc > 0.6")
    page.select_option("#f-ordering", "-best_val_acc")
    page.click("#run-filters button[type=submit]")
    expect(page.locator("tr[data-run]")).to_have_count(4)  # i = 30, 40, 50, 60
    if os.environ.get("DLSTUDIO_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["DLSTUDIO_SCREENSHOTS"], "runs-search.png"), full_page=True)
    expect(page.locator("#export-csv")).to_have_attribute(
        "href", re.compile(r"^/runs/export\.csv\?q=config\.lr\+%3C\+0\.003\+and.*&ordering=-best_val_acc$"))

    page.fill("#f-q", "config.lr 0.01")
    page.click("#run-filters button[type=submit]")
    expect(page.locator("#search-error")).to_contain_text("expected an operator after 'config.lr' at position 10")
    if os.environ.get("DLSTUDIO_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["DLSTUDIO_SCREENSHOTS"], "runs-search-error.png"))
