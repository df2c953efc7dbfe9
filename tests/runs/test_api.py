import hashlib

import pytest
from django.test import Client
from django.urls import reverse

from apps.runs.models import Run
from apps.runs.services import run_start
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db


def test_run_fields_metrics_and_evaluation(world, finished_run, api_as):
    api = api_as(world.viewer)
    body = api.get(f"/api/runs/{finished_run.pk}").json()
    for key in ["id", "experiment", "status", "attempt", "epoch", "epochs", "progress", "eta_seconds", "best_epoch",
                "best_val_acc", "test_acc", "device", "error", "diagnosis"]:
        assert key in body, key
    assert body["status"] == "succeeded" and body["attempt"] == 1 and body["device"] == "cpu"
    assert set(body["diagnosis"]) >= {"overfitting", "since_epoch", "message"}
    epochs = api.get(f"/api/runs/{finished_run.pk}/metrics").json()["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert set(epochs[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
                              "images_per_s", "gpu_memory_peak_mb"}
    assert all(e["gpu_memory_peak_mb"] is None for e in epochs)  # trained on the CPU
    assert [e["epoch"] for e in api.get(f"/api/runs/{finished_run.pk}/metrics?after=1").json()["epochs"]] == [2]
    evaluation = api.get(f"/api/runs/{finished_run.pk}/evaluation").json()
    assert evaluation["split"] == "test" and evaluation["classes"] == ["dark", "light"]
    assert len(evaluation["per_class"]) == 2 and {"image", "true", "predicted", "confidence"} >= set(
        (evaluation["misclassified"] or [{"image": 0, "true": "", "predicted": "", "confidence": 0}])[0])
    # It names the weights it scored: the very file the checkpoint download serves.
    download = sign_in(Client(), world.viewer).get(reverse("run_export_checkpoint", args=[finished_run.pk]))
    assert evaluation["checkpoint_sha256"] == hashlib.sha256(b"".join(download.streaming_content)).hexdigest()


def test_runs_list_filters_and_orders(world, finished_run, dataset, api_as):
    other = run_start(experiment=finished_run.experiment, user=world.owner)
    api = api_as(world.viewer)
    assert [r["id"] for r in api.get("/api/runs").json()["results"]] == [other.pk, finished_run.pk]
    assert [r["id"] for r in api.get("/api/runs?status=succeeded").json()["results"]] == [finished_run.pk]
    assert [r["id"] for r in api.get("/api/runs?ordering=-best_val_acc").json()["results"]] == [finished_run.pk]
    both = api.get(f"/api/runs?dataset={dataset.pk}&experiment={finished_run.experiment_id}").json()["results"]
    assert len(both) == 2
    assert api.get("/api/runs?dataset=abc").status_code == 400


def test_cancel_is_202_and_a_queued_run_is_cancelled(world, finished_run, api_as):
    run = run_start(experiment=finished_run.experiment, user=world.editor)
    response = api_as(world.editor).post(f"/api/runs/{run.pk}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"


def test_notes_and_tags(world, finished_run, api_as):
    api = api_as(world.editor)
    body = api.patch(f"/api/runs/{finished_run.pk}", {"notes": "baseline", "tags": ["base", "base", " v1 "]},
                     format="json").json()
    assert body["notes"] == "baseline" and body["tags"] == ["base", "v1"]
    assert [r["id"] for r in api.get("/api/runs?tag=v1").json()["results"]] == [finished_run.pk]


def test_outsider_gets_404_everywhere(world, finished_run, dataset, api_as):
    api = api_as(world.outsider)
    for url in [f"/api/experiments/{finished_run.experiment_id}", f"/api/runs/{finished_run.pk}",
                f"/api/runs/{finished_run.pk}/metrics", f"/api/runs/{finished_run.pk}/evaluation"]:
        assert api.get(url).status_code == 404, url
    assert api.post(f"/api/runs/{finished_run.pk}/cancel").status_code == 404
    assert api.patch(f"/api/runs/{finished_run.pk}", {"notes": "x"}, format="json").status_code == 404
    assert api.post(f"/api/experiments/{finished_run.experiment_id}/runs", {}, format="json").status_code == 404
    assert api.post("/api/experiments", {"name": "x", "dataset": dataset.pk}, format="json").status_code == 404
    assert api.get("/api/runs").json()["results"] == []


def test_viewer_reads_but_cannot_act(world, finished_run, dataset, api_as):
    api = api_as(world.viewer)
    assert api.get(f"/api/runs/{finished_run.pk}").status_code == 200
    assert api.post(f"/api/runs/{finished_run.pk}/cancel").status_code == 403
    assert api.patch(f"/api/runs/{finished_run.pk}", {"notes": "x"}, format="json").status_code == 403
    assert api.post(f"/api/experiments/{finished_run.experiment_id}/runs", {}, format="json").status_code == 403
    assert api.post("/api/experiments", {"name": "x", "dataset": dataset.pk}, format="json").status_code == 403
    assert Run.objects.count() == 1


def test_anonymous_is_401(finished_run, api_as):
    api = api_as(None)
    for url in ["/api/runs", f"/api/runs/{finished_run.pk}", f"/api/runs/{finished_run.pk}/metrics"]:
        assert api.get(url).status_code == 401


def test_a_dataset_with_an_active_run_cannot_be_deleted(world, finished_run, dataset, api_as):
    run_start(experiment=finished_run.experiment, user=world.editor)
    response = api_as(world.editor).delete(f"/api/datasets/{dataset.pk}")
    assert response.status_code == 400 and "cancel it first" in response.json()["error"]


def test_deleting_a_dataset_keeps_the_run_history(world, finished_run, dataset, api_as):
    assert api_as(world.editor).delete(f"/api/datasets/{dataset.pk}").status_code == 204
    finished_run.refresh_from_db()
    assert finished_run.dataset is None and finished_run.status == "succeeded"
    assert api_as(world.viewer).get(f"/api/runs/{finished_run.pk}").status_code == 200
