import os

import pytest
from playwright.sync_api import expect

from apps.datasets.models import Dataset
from apps.experiments.models import Experiment
from apps.runs.models import Run
from tests.support.browser import switch_team

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name):
    if os.environ.get("DLSTUDIO_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["DLSTUDIO_SCREENSHOTS"], name), full_page=True)


def test_dataset_and_experiment_lists_go_older_and_newer_and_the_runs_page_labels_its_count(
        page, live_server, sign_in, world):
    Dataset.objects.bulk_create([Dataset(team=world.team, name=f"set {i}", status="ready", progress=1.0,
                                         num_images=100, image_size=28, channels=1) for i in range(55)])
    experiments = Experiment.objects.bulk_create([Experiment(team=world.team, name=f"experiment {i}",
                                                             config={"arch": "smallcnn"}) for i in range(53)])
    Run.objects.bulk_create([Run(team=world.team, experiment=experiments[0], arch="smallcnn", status="succeeded",
                                 config={"lr": 0.01}, best_val_acc=0.9) for _ in range(3)])
    sign_in(page, "vera", world.password)
    switch_team(page, world.team.slug)
    for path, rows, rest in (("/datasets/", "#datasets tbody tr", 5), ("/experiments/", "#experiments tbody tr", 3)):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator(rows)).to_have_count(50)
        expect(page.locator("#newer")).to_have_count(0)
        page.click("#older")
        expect(page.locator(rows)).to_have_count(rest)
        shot(page, f"{path.strip('/')}-older.png")
        page.click("#newer")
        expect(page.locator(rows)).to_have_count(50)
    page.goto(f"{live_server.url}/runs/")
    expect(page.locator("#run-count")).to_contain_text("About 3 runs in the team's history (counted at ")
    expect(page.locator("#export-json")).to_have_attribute("href", "/runs/export.json?")
    shot(page, "runs-count.png")
