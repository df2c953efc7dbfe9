
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from apps.experiments.services import experiment_create
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.support.factories import ready_dataset
from tests.support.services import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_predict_images_on_the_page(page, live_server, sign_in, world, celery_workers, tmp_path):
    dataset = ready_dataset(world.team, tmp_path / "ld.zip")
    experiment = experiment_create(team=world.team, user=world.editor, name="light or dark",
                                   dataset=dataset, config={"epochs": 3, "batch_size": 8})
    run = run_start(experiment=experiment, user=world.editor)
    wait_until(lambda: Run.objects.filter(pk=run.pk, status="succeeded").exists(), timeout=120, message="training")
    images = []
    for name, value in (("night.png", 25), ("noon.png", 235)):
        path = tmp_path / name
        Image.fromarray(np.full((40, 30), value, np.uint8), mode="L").save(path)
        images.append(str(path))

    sign_in(page, "vera", world.password)  # a viewer may predict
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    page.click("#predict-link")
    page.set_input_files("#predict-files", images)
    page.click("#predict-submit")
    results = page.locator(".prediction")
    expect(results).to_have_count(2)
    expect(results.nth(0).locator(".bar-label").first).to_have_text("dark")
    expect(results.nth(1).locator(".bar-label").first).to_have_text("light")
    expect(page.locator("#predict-time")).to_contain_text("ms for 2 images")


def test_a_non_image_gets_the_reason(page, live_server, sign_in, world, celery_workers, tmp_path):
    dataset = ready_dataset(world.team, tmp_path / "ld.zip")
    experiment = experiment_create(team=world.team, user=world.editor, name="x", dataset=dataset,
                                   config={"epochs": 1, "batch_size": 8})
    run = run_start(experiment=experiment, user=world.editor)
    wait_until(lambda: Run.objects.filter(pk=run.pk, status="succeeded").exists(), timeout=120, message="training")
    text_file = tmp_path / "notes.png"
    text_file.write_bytes(b"just text")
    sign_in(page, "vera", world.password)
    page.goto(f"{live_server.url}/runs/{run.pk}/predict")
    page.set_input_files("#predict-files", str(text_file))
    page.click("#predict-submit")
    expect(page.locator("#predict-error")).to_contain_text("notes.png: not an image")
