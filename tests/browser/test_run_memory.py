import pytest
from playwright.sync_api import expect

from apps.experiments.models import Experiment
from tests.support.browser import switch_team
from tests.support.factories import ready_dataset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_form_refuses_a_network_over_the_memory_limit_beside_hidden_units(page, live_server, sign_in, world,
                                                                             tmp_path, settings):
    settings.MAX_RUN_GB = 20
    ready_dataset(world.team, tmp_path / "ld.zip", size=28)
    sign_in(page, "eddie", world.password)
    switch_team(page, world.team.slug)
    page.goto(f"{live_server.url}/experiments/new")
    page.fill("#id_name", "huge head")
    page.fill("#id_hidden_units", ",".join(["65536"] * 8))
    page.click("#create-only")
    # Beside the field that weighs most: the Hidden units box holds the sentence.
    error = page.locator("#id_hidden_units").locator("xpath=..").get_by_text("This config needs about ")
    expect(error).to_be_visible()
    expect(error).to_contain_text("the limit is 20 GB (DLSTUDIO_MAX_RUN_GB). Lower hidden_units")
    expect(page.locator("#id_hidden_units")).to_have_value(",".join(["65536"] * 8))  # what was typed stays
    assert not Experiment.objects.exists()
