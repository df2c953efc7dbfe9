"""Fixing labels where they are seen: a run's misclassified image relabelled into a new dataset version."""
import io
import zipfile

import pytest
from playwright.sync_api import expect

from tests.support.browser import switch_team
from tests.support.factories import OPTIONS, QUICK, light_and_dark_entries, make_experiment, trained_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def mislabelled_zip(path):
    """Dark and light squares, with a quarter of the dark ones filed under light: mistakes a run shows."""
    entries = light_and_dark_entries(per_class=40)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            kind, file = name.split("/")
            wrong = kind == "dark" and int(file[:3]) % 4 == 0
            archive.writestr(f"light/wrong-{file}" if wrong else name, data)
    path.write_bytes(out.getvalue())
    return path


def test_relabel_a_misclassified_image_into_a_new_version(page, live_server, sign_in, world, celery_workers,
                                                          tmp_path):
    from apps.datasets.models import Dataset
    from apps.datasets.services import dataset_create
    from apps.datasets.ingest import dataset_ingest
    from tests.support.services import wait_until

    dataset = dataset_create(team=world.team, user=world.owner, name="Squares", options=OPTIONS,
                             source_path=mislabelled_zip(tmp_path / "squares.zip"))
    dataset_ingest(dataset_id=dataset.pk)
    wait_until(lambda: Dataset.objects.filter(pk=dataset.pk, status="ready").exists(), timeout=120,
               message="the dataset to be ingested")
    dataset.refresh_from_db()
    run = trained_run(make_experiment(world.team, world.owner, dataset, {**QUICK, "epochs": 4}), world.owner)
    assert run.evaluation.misclassified, "the mislabelled squares should be misclassified"

    sign_in(page, "eddie", world.password)
    switch_team(page, world.team.slug)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    first = page.locator("#misclassified figure").first
    predicted = first.locator("[data-change=relabel]").get_attribute("data-to")
    original = first.locator("[data-change=relabel]").get_attribute("data-from")
    first.locator("[data-change=relabel]").click()
    expect(page.locator("#version-panel")).to_be_visible()
    expect(page.locator("#version-preview")).to_contain_text(f"Relabel 1 image: {original} → {predicted}")
    page.screenshot(path=str(tmp_path / "preview.png"), full_page=True)
    page.click("#version-make")

    # The new version's page: it is made by the real ingest worker, then the page shows it ready.
    page.wait_for_url(f"{live_server.url}/datasets/*/")
    expect(page.locator("#dataset-version")).to_have_text("v2")
    expect(page.locator("#dataset-status")).to_have_text("ready", timeout=120_000)
    expect(page.locator("#versions")).to_contain_text("relabelled 1")
    page.locator(".pick-box").first.check()
    page.fill("#relabel-to", "grey")
    page.click("[data-pick-action=relabel]")
    expect(page.locator("#version-preview")).to_contain_text("'grey' is a new class")
    page.screenshot(path=str(tmp_path / "version.png"), full_page=True)
    version = Dataset.objects.get(parent=dataset)
    assert version.content_hash and version.content_hash != dataset.content_hash
    assert version.health["decoded"] == 0 and version.num_images == dataset.num_images
    # The run still names the data it trained on; the dataset list groups both versions.
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    expect(page.locator("#run-dataset")).to_contain_text(dataset.content_hash[:12])
    page.goto(f"{live_server.url}/datasets/")
    expect(page.locator("tbody.family").first.locator("tr")).to_have_count(2)
    page.screenshot(path=str(tmp_path / "list.png"), full_page=True)
