"""Predicting within a budget: a tiny file that would decode to gigabytes is a 400 sentence without
the web process growing, and one request's images together may decode only so many pixels."""
import io
import re

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.serving import predictors

pytestmark = pytest.mark.django_db


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def post(api, run, *files):
    key = "image" if len(files) == 1 else "images"
    return api.post(f"/api/runs/{run.pk}/predict", {key: [SimpleUploadedFile(n, c) for n, c in files]},
                    format="multipart")


def status(key: str) -> int:
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024


@pytest.fixture(autouse=True)
def empty_cache():
    predictors.clear_cache()
    yield
    predictors.clear_cache()


def test_a_9400_square_16_bit_png_is_a_400_and_the_process_stays_within_the_budget(world, finished_run, api_as):
    api, data = api_as(world.viewer), encode(Image.new("I;16", (9400, 9400)))
    assert len(data) < 200_000
    assert post(api, finished_run, ("warm.png", encode(Image.new("L", (8, 8))))).status_code == 200
    try:
        open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS, so the peak is this request's
    except OSError:
        pytest.skip("this kernel cannot reset the peak resident size")
    before = status("VmRSS")
    response = post(api, finished_run, ("flat.png", data))
    assert status("VmHWM") - before < 64 * 10**6
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("flat.png: image of 9400x9400 pixels") and "MiB one image may use" in error


def test_the_images_of_one_request_may_decode_only_so_many_pixels(world, finished_run, api_as, monkeypatch):
    api = api_as(world.viewer)
    big = encode(Image.fromarray(np.zeros((3000, 3000), np.uint8)))  # 9 million pixels each
    monkeypatch.setattr(predictors, "MAX_REQUEST_PIXELS", 20_000_000)
    response = post(api, finished_run, ("a.png", big), ("b.png", big), ("c.png", big))
    assert response.status_code == 400
    assert response.json()["error"] == ("These 3 images hold 27 million pixels together, over the 20 million one "
                                        "request may decode; send fewer or smaller images in each request.")
    body = post(api, finished_run, ("a.png", big), ("b.png", big)).json()
    assert [r["name"] for r in body["results"]] == ["a.png", "b.png"]
    # A JPEG counts the pixels its decoder makes at the model's size (scaled down by up to 8 while decoding).
    jpeg = encode(Image.new("RGB", (6000, 4000)), "JPEG")
    response = post(api, finished_run, *[(f"{i}.jpg", jpeg) for i in range(5)])
    assert response.status_code == 200 and len(response.json()["results"]) == 5
