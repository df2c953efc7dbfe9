import os

import pytest
from playwright.sync_api import expect

from tests.support.browser import switch_team
from tests.support.factories import make_experiment, ready_dataset, trained_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_run_page_shows_the_environment_and_what_deterministic_costs(page, live_server, sign_in, world,
                                                                         tmp_path):
    dataset = ready_dataset(world.team, tmp_path / "ld.zip", per_class=30)
    run = trained_run(make_experiment(world.team, world.owner, dataset), world.owner,
                      overrides={"deterministic": True})
    sign_in(page, "eddie", world.password)
    switch_team(page, world.team.slug)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    card = page.locator("section.card", has=page.locator("h2", has_text="Configuration"))
    for name in ("Python", "torchvision", "CUDA", "cuDNN", "GPU", "Host", "Code", "Deterministic"):
        expect(card.locator("dt", has_text=name).first).to_be_visible()
    expect(card).to_contain_text(run.environment["host"])
    expect(card).to_contain_text("slower on a GPU")
    if os.environ.get("DLSTUDIO_SCREENSHOTS"):
        card.screenshot(path=os.path.join(os.environ["DLSTUDIO_SCREENSHOTS"], "run-environment.png"))

    page.goto(f"{live_server.url}/experiments/new")
    expect(page.locator("#id_deterministic")).not_to_be_checked()
    expect(page.get_by_text("slower on a GPU")).to_be_visible()
