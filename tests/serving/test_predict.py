"""Predict and export: the API answers what the engine answers, hostile input gets a 400."""
import io
import os

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from apps.serving import predictors
from apps.runs.training import run_train
from apps.runs.services import run_start
from workers.engine import Predictor
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db


def png(value: int, size=(8, 8), mode="L") -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0]), value, np.uint8), mode="L").convert(mode).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(autouse=True)
def empty_cache():
    predictors.clear_cache()
    yield
    predictors.clear_cache()




def checkpoint_of(run):
    return predictors.best_checkpoint(run)


def post(api, run, *files, **fields):
    key = "image" if len(files) == 1 else "images"
    data = {key: [SimpleUploadedFile(name, content) for name, content in files], **fields}
    return api.post(f"/api/runs/{run.pk}/predict", data, format="multipart")


def test_one_image_gets_the_engines_answer(world, finished_run, api_as):
    image = png(30, size=(20, 13), mode="RGB")  # another size and mode than the 8x8 grayscale training images
    body = post(api_as(world.viewer), finished_run, ("dark.png", image)).json()
    expected = Predictor.from_checkpoint(checkpoint_of(finished_run)).predict(image, top_k=5)
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in expected]
    assert [p["probability"] for p in body["predictions"]] == pytest.approx([p["probability"] for p in expected])
    assert body["predictions"][0]["label"] == "dark" and body["inference_ms"] > 0


def test_several_images_are_answered_by_name(world, finished_run, api_as):
    body = post(api_as(world.viewer), finished_run, ("a.png", png(20)), ("b.png", png(230)), top_k="1").json()
    assert [r["name"] for r in body["results"]] == ["a.png", "b.png"]
    assert [r["predictions"][0]["label"] for r in body["results"]] == ["dark", "light"]
    assert all(len(r["predictions"]) == 1 for r in body["results"])


def decompression_bomb() -> bytes:
    out = io.BytesIO()
    Image.new("L", (20_000, 20_000)).save(out, format="PNG")  # 400 Mpx of zeros: a few hundred kB
    return out.getvalue()


@pytest.mark.parametrize("name,content,reason", [
    ("notes.txt", b"this is text, not an image", "not an image"),
    ("page.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "not an image"),
    ("cut.png", None, "truncated"),
    ("bomb.png", None, "too large"),
])
def test_hostile_files_get_a_400_naming_the_file(world, finished_run, api_as, name, content, reason):
    if name == "cut.png":
        content = png(10, size=(64, 64))[:60]
    if name == "bomb.png":
        content = decompression_bomb()
    response = post(api_as(world.viewer), finished_run, (name, content))
    assert response.status_code == 400
    assert name in response.json()["error"] and reason in response.json()["error"]


def test_an_oversized_file_and_too_many_files_are_400(world, finished_run, api_as, monkeypatch):
    api = api_as(world.viewer)
    monkeypatch.setattr(predictors, "MAX_IMAGE_BYTES", 100)
    response = post(api, finished_run, ("big.png", png(10, size=(64, 64))))
    assert response.status_code == 400 and "larger than" in response.json()["error"]
    monkeypatch.undo()
    response = post(api, finished_run, *[(f"{i}.png", png(i)) for i in range(65)])
    assert response.status_code == 400 and "at most 64" in response.json()["error"]
    assert post(api, finished_run, ("a.png", png(1)), top_k="50").status_code == 400
    assert api.post(f"/api/runs/{finished_run.pk}/predict", {}, format="multipart").status_code == 400


def test_more_files_than_django_accepts_is_a_400_not_a_500(world, finished_run, api_as):
    response = post(api_as(world.viewer), finished_run, *[(f"{i}.png", b"x") for i in range(101)])
    assert response.status_code == 400 and response.json()["error"]


def test_the_cache_loads_a_changed_checkpoint_again(world, finished_run, dataset, api_as):
    api = api_as(world.viewer)
    post(api, finished_run, ("a.png", png(20)))
    first = predictors.predictor_for(finished_run)
    assert predictors.predictor_for(finished_run) is first  # cached
    other = run_start(experiment=finished_run.experiment, user=world.editor,
                      overrides={"seed": 7, "epochs": 1})
    run_train(run_id=other.pk, worker="w@test")
    other.refresh_from_db()
    target = checkpoint_of(finished_run)
    target.write_bytes(checkpoint_of(other).read_bytes())
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    reloaded = predictors.predictor_for(finished_run)
    assert reloaded is not first
    body = post(api, finished_run, ("a.png", png(20))).json()
    expected = Predictor.from_checkpoint(checkpoint_of(other)).predict(png(20))
    assert [p["probability"] for p in body["predictions"]] == pytest.approx([p["probability"] for p in expected])


def test_a_run_without_weights_is_a_400(world, finished_run, api_as):
    queued = run_start(experiment=finished_run.experiment, user=world.editor)
    response = post(api_as(world.viewer), queued, ("a.png", png(1)))
    assert response.status_code == 400 and "no trained weights" in response.json()["error"]


def test_outsider_404_and_anonymous_401(world, finished_run, api_as):
    assert post(api_as(world.outsider), finished_run, ("a.png", png(1))).status_code == 404
    assert post(api_as(None), finished_run, ("a.png", png(1))).status_code == 401


def test_exports_checkpoint_onnx_and_model_card(client, world, finished_run):
    import onnx
    from onnx.reference import ReferenceEvaluator

    from workers.engine.train.checkpoint import load_checkpoint

    c = sign_in(client, world.viewer, world.team)
    response = c.get(reverse("run_export_checkpoint", args=[finished_run.pk]))
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    saved = io.BytesIO(b"".join(response.streaming_content))
    assert list(load_checkpoint_bytes(saved, load_checkpoint)["classes"]) == ["dark", "light"]

    response = c.get(reverse("run_export_onnx", args=[finished_run.pk]))
    assert response.status_code == 200
    model = onnx.load_from_string(b"".join(response.streaming_content))
    predictor = Predictor.from_checkpoint(checkpoint_of(finished_run))
    batch = np.random.default_rng(0).normal(size=(3, 1, 8, 8)).astype(np.float32)
    (logits,) = ReferenceEvaluator(model).run(None, {"image": batch})
    import torch

    with torch.inference_mode():
        expected = predictor.model(torch.from_numpy(batch)).numpy()
    assert np.allclose(logits, expected, atol=1e-4)

    card = c.get(reverse("run_export_model_card", args=[finished_run.pk])).json()
    assert card["classes"] == ["dark", "light"] and card["preprocessing"]["image_size"] == 8
    assert card["preprocessing"]["channels"] == 1 and card["metrics"]["test_acc"] == finished_run.test_acc
    assert card["config"]["epochs"] == 2 and card["dataset"]["id"] == finished_run.dataset_id


def load_checkpoint_bytes(buffer, load_checkpoint):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "best.pt"
        path.write_bytes(buffer.getvalue())
        return load_checkpoint(path)


def test_predict_page_and_exports_are_404_for_outsiders(client, world, finished_run):
    c = sign_in(client, world.outsider, world.team)
    for name in ["run_predict", "run_export_checkpoint", "run_export_onnx", "run_export_model_card"]:
        assert c.get(reverse(name, args=[finished_run.pk])).status_code == 404, name


def test_viewers_may_predict_and_download(client, world, finished_run):
    c = sign_in(client, world.viewer, world.team)
    page = c.get(reverse("run_predict", args=[finished_run.pk])).content.decode()
    assert 'id="predict-form"' in page and "dark, light" in page
    assert 'id="predict-link"' in c.get(reverse("run_detail", args=[finished_run.pk])).content.decode()


def test_anonymous_is_sent_to_login(client, finished_run):
    for name in ["run_predict", "run_export_checkpoint", "run_export_onnx", "run_export_model_card"]:
        assert client.get(reverse(name, args=[finished_run.pk])).url.startswith(reverse("login"))


def test_viewers_asking_at_once_for_the_onnx_file_get_one_export_and_the_same_whole_file(finished_run, monkeypatch):
    import threading

    import onnx

    from apps.serving import exporting
    from workers import engine

    exports = []
    real = engine.export_onnx
    monkeypatch.setattr(exporting.engine, "export_onnx", lambda *a: exports.append(a) or real(*a))
    barrier, answers, errors = threading.Barrier(6), [], []

    def ask():
        barrier.wait()
        try:
            answers.append(exporting.onnx_file(finished_run).read_bytes())
        except Exception as exc:  # noqa: BLE001 (any failure is the test's finding)
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(answers) == 6 and len(exports) == 1
    assert len(set(answers)) == 1 and onnx.load_from_string(answers[0]).graph.input[0].name == "image"
    assert not list(exporting.best_checkpoint(finished_run).parent.glob("*.partial"))


def test_two_exports_at_once_in_one_process_both_succeed(finished_run, tmp_path):
    import threading

    from workers import engine

    checkpoint, errors = predictors.best_checkpoint(finished_run), []
    barrier = threading.Barrier(2)

    def export(i):
        barrier.wait()
        try:
            engine.export_onnx(checkpoint, tmp_path / f"{i}.onnx")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=export, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and (tmp_path / "0.onnx").read_bytes() == (tmp_path / "1.onnx").read_bytes()
