import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.support.browser import switch_team
from tests.support.factories import ready_dataset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = "/tmp/sweep-page.png"
# Every point of every trial's line in the overlay (the colour scale's own trace has none).
OVERLAY_POINTS = ("() => { const el = document.getElementById('chart-overlay');"
                  " return el && el.data ? el.data.filter(t => t.mode === 'lines+markers')"
                  ".reduce((n, t) => n + t.x.length, 0) : 0; }")
COLOURBAR_TITLE = ("() => { const el = document.getElementById('chart-overlay');"
                   " const bar = el.data.find(t => t.marker && t.marker.showscale);"
                   " return bar ? bar.marker.colorbar.title.text : null; }")


def test_start_a_learning_rate_sweep_watch_it_grow_recolour_it_and_cancel_it(
        page, live_server, sign_in, world, celery_workers, tmp_path):
    from apps.experiments.services import experiment_create
    from apps.runs.models import Run
    from apps.sweeps.models import Sweep
    from tests.support.services import wait_until

    dataset = ready_dataset(world.team, tmp_path / "ld.zip")
    # Long enough that the sweep is still running when the test cancels it, on a fast machine too: an epoch
    # of this tiny dataset takes a few milliseconds there.
    experiment = experiment_create(team=world.team, user=world.editor, name="quick cnn", dataset=dataset,
                                   config={"epochs": 1000, "batch_size": 8, "hidden_units": [16], "seed": 1})
    sign_in(page, "eddie", world.password)
    switch_team(page, world.team.slug)
    page.goto(live_server.url + reverse("experiment_detail", args=[experiment.pk]))

    # The form starts open on an experiment with no sweep; a preset writes its space into the box.
    expect(page.locator("#sweep-start")).to_have_attribute("open", "")
    page.select_option("#id_preset", "optimizer")
    expect(page.locator("#id_parameters")).to_have_value(re.compile("sgd_nesterov"))
    page.select_option("#id_preset", label="Learning rate (log grid 1e-5…1)")
    expect(page.locator("#id_parameters")).to_have_value(re.compile(r'"lr"(.|\n)*0\.00001'))
    expect(page.locator("#id_method")).to_have_value("grid")
    page.fill("#id_name", "which learning rate")
    page.fill("#id_max_parallel", "2")
    page.click("#start-sweep")
    page.wait_for_url(f"{live_server.url}/sweeps/*/")
    sweep = Sweep.objects.get()
    assert sweep.trials == 6 and sweep.parameters == {"lr": {"values": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]}}
    expect(page.locator("h1")).to_contain_text("which learning rate")
    expect(page.locator("#sweep-total")).to_have_text("6")

    # The overlay grows live as the trials' epochs arrive from the worker.
    page.wait_for_function(f"() => ({OVERLAY_POINTS})() >= 1", timeout=120_000)
    first_seen = page.evaluate(OVERLAY_POINTS)
    page.wait_for_function(f"() => ({OVERLAY_POINTS})() > {first_seen}", timeout=120_000)
    expect(page.locator("#sweep-trials tbody tr").first).to_contain_text("lr=1e-05")

    # Coloured by the learning rate: a continuous scale, on log10, with a colourbar; by status: a legend.
    assert page.evaluate(COLOURBAR_TITLE) == "lr (log)"
    assert page.evaluate("() => document.getElementById('chart-overlay').layout.showlegend") is False
    page.select_option("#sweep-colour", "status")
    page.wait_for_function("() => document.getElementById('chart-overlay').dataset.colour === 'status'",
                           timeout=30_000)
    assert page.evaluate(COLOURBAR_TITLE) is None
    assert page.evaluate("() => document.getElementById('chart-overlay').layout.legend.title.text") == "status"
    legend = page.evaluate("() => document.getElementById('chart-overlay').data"
                           ".filter(t => t.showlegend).map(t => t.name)")
    # Which states the trials are in by now depends on the machine's speed; each shown is one of them.
    assert legend and set(legend) <= {"running", "complete", "pruned", "failed"}, legend
    expect(page.locator("#chart-overlay .legend")).to_contain_text(legend[0])
    page.screenshot(path=SCREENSHOT, full_page=True)

    # Cancelling stops the sweep: nothing keeps training after the test.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel-sweep")
    expect(page.locator("#sweep-status")).to_have_text("cancelled")
    wait_until(lambda: not Run.objects.filter(sweep=sweep, status__in=Run.ACTIVE_STATUSES).exists(), timeout=60,
               message="the sweep's trials to stop")
    sweep.refresh_from_db()
    assert sweep.status == "cancelled"
    expect(page.locator("#cancel-sweep")).to_have_count(0)
