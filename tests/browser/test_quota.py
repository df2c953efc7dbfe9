"""The storage quota in the browser: an upload refused on the form with its sentence, the upscale
confirmation, and the team page's usage bar."""
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.datasets.models import Dataset
from tests.support.browser import switch_team
from tests.support.factories import class_entries, zip_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("DLSTUDIO_SCREENSHOTS", "")) if os.environ.get("DLSTUDIO_SCREENSHOTS") else None


def shot(page, tmp_path, name):
    page.screenshot(path=str((SHOTS or tmp_path) / name), full_page=True)


def test_an_upload_past_the_quota_is_refused_on_the_form_and_the_team_page_shows_usage(
        page, live_server, sign_in, world, settings, tmp_path):
    settings.TEAM_QUOTA_GB = 1
    Dataset.objects.create(team=world.team, name="Already here", status="ready", bytes=500_000_000)
    archive = tmp_path / "dots.zip"
    archive.write_bytes(zip_bytes(class_entries(per_class=100, size=(1, 1))))
    sign_in(page, "eddie", world.password)
    switch_team(page, world.team.slug)
    page.goto(f"{live_server.url}/datasets/upload")
    page.set_input_files("#id_archive", str(archive))
    page.fill("#id_name", "Dots")
    page.fill("#id_image_size", "1024")
    page.select_option("#id_color", "rgb")

    page.click("#upload-submit")  # 1x1 images to 1024 px: refused until confirmed
    expect(page.locator('.field-error[data-field="image_size"]')).to_contain_text(
        "The largest image in this archive is 1 px on its longest side, and image_size 1024 would enlarge")
    shot(page, tmp_path, "upscale-refused.png")

    page.check("#id_allow_upscale")  # confirmed: now the quota speaks
    page.click("#upload-submit")
    expect(page.locator('.field-error[data-field="archive"]')).to_have_text(
        "This upload would make a pack of about 632 MB; the team uses 500 MB of its 1.0 GB storage quota "
        "(DLSTUDIO_TEAM_QUOTA_GB); delete datasets, runs or weights files, or choose a smaller image_size, or ask "
        "an administrator to raise the quota.")
    expect(page.locator("#upload-progress")).to_be_hidden()
    shot(page, tmp_path, "quota-refused.png")
    assert not Dataset.objects.filter(name="Dots").exists()

    page.goto(f"{live_server.url}/teams/{world.team.slug}/")
    expect(page.locator("#storage-used")).to_have_text("500 MB")
    expect(page.locator("#storage-quota")).to_have_text("1.0 GB")
    expect(page.locator('#storage [data-kind="datasets"]')).to_have_text("Datasets: 500 MB")
    width = page.locator("#storage .usage-datasets").first.evaluate("el => el.getBoundingClientRect().width")
    total = page.locator("#storage .usage-bar").evaluate("el => el.getBoundingClientRect().width")
    assert abs(width / total - 0.5) < 0.02  # half the bar: 500 MB of 1 GB
    shot(page, tmp_path, "team-usage.png")
