import pytest
from playwright.sync_api import expect

from tests.support.factories import class_entries, zip_bytes
from tests.support.browser import switch_team

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_upload_a_zip_watch_the_progress_and_see_the_chart_and_gallery(
        page, live_server, sign_in, world, celery_workers, tmp_path):
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(zip_bytes(class_entries(classes=("circle", "square", "star"), per_class=15, size=(24, 24))))
    sign_in(page, "eddie", world.password)
    switch_team(page, world.team.slug)
    page.click("text=Datasets")
    page.click("text=Upload a dataset")
    page.set_input_files("#id_archive", str(archive))
    page.fill("#id_name", "Shapes")
    page.click("#upload-submit")
    expect(page.locator("#upload-progress")).to_be_visible()
    # Upload, then ingest in the real worker, then the page moves on to the dataset by itself.
    page.wait_for_url(f"{live_server.url}/datasets/*/", timeout=120_000)
    expect(page.locator("h1")).to_have_text("Shapes")
    expect(page.locator("#dataset-status")).to_have_text("ready")
    expect(page.locator("#classes-chart .main-svg").first).to_be_visible()
    expect(page.locator("#classes-chart")).to_contain_text("square")
    expect(page.locator(".thumb img")).to_have_count(45)
    first = page.locator(".thumb img").first
    first.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())


def test_a_bad_archive_shows_the_error_beside_the_form(page, live_server, sign_in, world, tmp_path):
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"this is not a zip file")
    sign_in(page, "eddie", world.password)
    page.goto(f"{live_server.url}/datasets/upload")
    page.set_input_files("#id_archive", str(bogus))
    page.fill("#id_name", "Bogus")
    page.click("#upload-submit")
    expect(page.locator('.field-error[data-field="archive"]')).to_contain_text("not a zip")
    expect(page.locator("#upload-progress")).to_be_hidden()
