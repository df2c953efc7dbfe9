import pytest
from playwright.sync_api import expect

from tests.support.browser import switch_team
from tests.support.factories import ready_dataset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def points(page, chart_id: str) -> int:
    return page.evaluate(f"() => {{ const el = document.getElementById('{chart_id}');"
                         " return el && el.data ? el.data[0].x.length : 0; }")


def test_define_an_experiment_start_a_run_watch_it_grow_and_see_the_confusion_matrix(
        page, live_server, sign_in, world, celery_workers, tmp_path):
    ready_dataset(world.team, tmp_path / "ld.zip", per_class=200)
    sign_in(page, "eddie", world.password)
    switch_team(page, world.team.slug)
    page.click("nav >> text=Experiments")
    page.click("text=Quick CNN")
    page.fill("#id_name", "first try")
    page.fill("#id_epochs", "60")
    page.fill("#id_batch_size", "8")
    page.click("#create-and-start")
    page.wait_for_url(f"{live_server.url}/runs/*/")
    expect(page.locator("h1")).to_contain_text("first try")

    # The charts grow live, without a reload, as epochs arrive from the worker.
    page.wait_for_function("() => document.getElementById('chart-loss').data[0].x.length >= 1"
                           " || document.getElementById('run-status').textContent === 'failed'", timeout=120_000)
    expect(page.locator("#run-status")).not_to_have_text("failed")
    first_seen = points(page, "chart-loss")
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    page.wait_for_function(f"() => window.sameDocument && document.getElementById('chart-loss').data[0].x.length"
                           f" > {first_seen} && document.getElementById('chart-accuracy').data[0].x.length"
                           f" > {first_seen}", timeout=120_000)

    # When the run ends the page shows the evaluation: the confusion matrix heatmap.
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=180_000)
    expect(page.locator("#chart-confusion .main-svg").first).to_be_visible()
    expect(page.locator("#per-class")).to_contain_text("light")
    assert points(page, "chart-loss") == 60


def test_compare_two_runs_from_the_history(page, live_server, sign_in, world, celery_workers, tmp_path):
    from apps.experiments.services import experiment_create
    from apps.runs.models import Run
    from apps.runs.services import run_start
    from tests.support.services import wait_until

    dataset = ready_dataset(world.team, tmp_path / "ld.zip")
    experiment = experiment_create(team=world.team, user=world.editor, name="lr sweep", dataset=dataset,
                                   config={"epochs": 3, "batch_size": 8, "hidden_units": [16]})
    runs = [run_start(experiment=experiment, user=world.editor, overrides={"lr": lr})
            for lr in (0.001, 0.01)]
    wait_until(lambda: Run.objects.filter(status="succeeded").count() == 2, timeout=120, message="both runs")

    sign_in(page, "vera", world.password)
    switch_team(page, world.team.slug)
    page.click("nav >> text=Runs")
    for run in runs:
        page.check(f'tr[data-run="{run.pk}"] input[name=ids]')
    page.click("#compare-selected")
    expect(page.locator("h1")).to_have_text("Compare 2 runs")
    expect(page.locator("#chart-loss .main-svg").first).to_be_visible()
    expect(page.locator("#config-diff")).to_contain_text("lr")
    assert page.evaluate("() => document.getElementById('chart-loss').data.length") == 4  # train + val per run
