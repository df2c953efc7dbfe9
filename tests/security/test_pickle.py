"""A pickle payload never executes anywhere: not on the web (a weights upload, predicting and exporting
with a planted checkpoint), not in a worker (a run whose parent checkpoint or weights file was swapped for
a payload), not on the command line. The payload's __reduce__ opens a marker file; the marker must never
appear, and each refusal is a sentence."""
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from dlstudio import storage
from apps.serving import predictors
from tests.support.services import ROOT

pytestmark = pytest.mark.django_db


class Payload:
    """Unpickling this calls open(marker, "w"): code from the file running wherever it is loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def checkpoint_with_payload(marker, **save_options) -> bytes:
    from workers.engine.train.checkpoint import FORMAT, VERSION

    out = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "model": {}, "classes": ["a", "b"], "x": Payload(marker)},
               out, **save_options)
    return out.getvalue()


def state_dict_with_payload(marker, **save_options) -> bytes:
    out = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(1), "fc.bias": Payload(marker)}, out, **save_options)
    return out.getvalue()


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "payload-ran"
    yield path
    assert not path.exists(), "the payload ran"


def test_the_payload_is_real(tmp_path):
    """Loaded without the restriction, the same bytes run the payload: the tests below test something."""
    marker = tmp_path / "ran"
    torch.load(io.BytesIO(checkpoint_with_payload(marker)), weights_only=False)
    assert marker.exists()
    marker.unlink()
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.fixture
def editor(objects, signed_in):
    client = signed_in(objects.editor, enforce_csrf_checks=True)
    client.get("/weights/upload")
    client.csrf = client.cookies["csrftoken"].value
    return client


@pytest.mark.parametrize("kind", ["zip", "legacy", "raw pickle"])
def test_a_weights_upload_with_a_payload_is_refused_unexecuted(kind, objects, editor, marker, settings):
    content = {"zip": lambda: state_dict_with_payload(marker),
               "legacy": lambda: state_dict_with_payload(marker, _use_new_zipfile_serialization=False),
               "raw pickle": lambda: pickle.dumps({"fc.bias": Payload(marker)})}[kind]()
    page = editor.post("/weights/upload", {"file": SimpleUploadedFile("resnet18.pth", content), "arch": "resnet18",
                                           "csrfmiddlewaretoken": editor.csrf})
    assert page.status_code == 200 and b'data-field="file"' in page.content
    api = editor.post("/api/weights", {"file": SimpleUploadedFile("resnet18.pth", content), "arch": "resnet18",
                                       "team": objects.team.slug}, HTTP_X_CSRFTOKEN=editor.csrf)
    assert api.status_code == 400 and api.json()["field"] == "file" and api.json()["error"].endswith(".")
    folder = settings.DATA_DIR / "weights"
    assert not folder.exists() or not list(folder.iterdir())


@pytest.fixture
def planted(objects, marker):
    """The run's best checkpoint swapped for a payload (put back afterwards, for the module's other tests)."""
    path = predictors.best_checkpoint(objects.run)
    original = path.read_bytes()
    path.write_bytes(checkpoint_with_payload(marker))
    predictors.clear_cache()
    yield path
    path.write_bytes(original)
    predictors.clear_cache()


def png_bytes(value=40) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, np.uint8), mode="L").save(out, format="PNG")
    return out.getvalue()


def test_predicting_and_exporting_with_a_planted_checkpoint_refuse_it(objects, signed_in, api_as, planted):
    api = api_as(objects.viewer)
    response = api.post(f"/api/runs/{objects.run.pk}/predict",
                        {"image": SimpleUploadedFile("a.png", png_bytes())}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"].startswith("This run's checkpoint cannot be used") and "refused" in \
        response.json()["error"]
    client = signed_in(objects.viewer)
    for path in ("predict", "export/model-card", "export/onnx"):
        page = client.get(f"/runs/{objects.run.pk}/{path}", follow=True)
        assert page.status_code == 200 and b"refused" in page.content, path


def test_a_worker_refuses_a_parent_checkpoint_that_carries_a_payload(objects, planted):
    from apps.experiments.services import experiment_create
    from apps.runs.services import run_start
    from apps.runs.training import run_train

    child = experiment_create(team=objects.team, user=objects.editor, name="from the planted run",
                              dataset=objects.dataset,
                              config={"epochs": 1, "batch_size": 8, "pretrained": {"run": objects.run.pk}})
    run = run_start(experiment=child, user=objects.editor)
    run_train(run_id=run.pk, worker="w@test")  # what the runs.train task runs in the worker
    run.refresh_from_db()
    assert run.status == "failed" and "refused unread" in run.error and "Traceback" not in run.error


def test_a_worker_refuses_a_weights_file_swapped_for_a_payload(objects, marker):
    from apps.experiments.services import experiment_create
    from apps.runs.services import run_start
    from apps.runs.training import run_train

    target = storage.absolute(objects.weights.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(state_dict_with_payload(marker))
    try:
        experiment = experiment_create(
            team=objects.team, user=objects.editor, name="imagenet", dataset=objects.dataset,
            config={"arch": "resnet18", "pretrained": "imagenet", "epochs": 1, "batch_size": 8},
            weights_file=objects.weights)
        run = run_start(experiment=experiment, user=objects.editor)
        run_train(run_id=run.pk, worker="w@test")
        run.refresh_from_db()
        assert run.status == "failed" and "refused unread" in run.error, run.error
    finally:
        target.unlink()


def test_the_cli_refuses_a_checkpoint_with_a_payload_in_one_line(tmp_path, marker):
    checkpoint = tmp_path / "payload.pt"
    checkpoint.write_bytes(checkpoint_with_payload(marker))
    image = tmp_path / "img.png"
    image.write_bytes(png_bytes())
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-m", "workers.engine", "predict", str(checkpoint), str(image)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "refused unread" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_training_worker_refuses_a_planted_parent_checkpoint(celery_workers, tmp_path, marker):
    """The same as above through Redis and a `celery worker -Q train` process of its own."""
    from apps.experiments.services import experiment_create
    from apps.runs.models import Run
    from apps.runs.services import run_start
    from tests.security.conftest import build_world
    from tests.support.services import wait_until

    world = build_world(tmp_path)
    predictors.best_checkpoint(world.run).write_bytes(checkpoint_with_payload(marker))
    child = experiment_create(team=world.team, user=world.editor, name="from the planted run",
                              dataset=world.dataset,
                              config={"epochs": 1, "batch_size": 8, "pretrained": {"run": world.run.pk}})
    run = run_start(experiment=child, user=world.editor)
    wait_until(lambda: Run.objects.filter(pk=run.pk, status__in=Run.FINISHED_STATUSES).exists(), timeout=120,
               message="the worker to finish the run")
    run.refresh_from_db()
    assert run.status == "failed" and "refused unread" in run.error and run.attempt == 1
