"""Machines that share nothing but the database and an object store (DLSTUDIO_STORAGE_URL=s3://...): this
process as the web server, an ingest worker and training workers, each with a data dir of its own, all real
processes (a real Redis, real Celery workers, moto's S3 server as a separate process)."""
from __future__ import annotations

import hashlib
import io
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from apps.datasets.models import Dataset
from apps.experiments.services import experiment_create
from apps.runs.models import EpochMetric, Run
from apps.runs.services import run_start
from dlstudio import storage
from tests.support.factories import QUICK, light_and_dark_entries, sign_in, zip_bytes
from tests.support.objectstore import KEYS, Azurite, S3Server
from tests.support.services import ROOT, CeleryWorker, wait_until
from tests.support.stack import own_stack

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BUCKET = "dlstudio-itest"
PREFIX = "dlstudio"
THREE_EPOCHS = {**QUICK, "epochs": 3}


# --- machines ---------------------------------------------------------------------------------------------------

class Machines:
    """One broker and beat for the module; workers started on demand, each as a machine with its own data dir
    (or a shared one, as two workers on one host), and stopped when a test needs others."""

    def __init__(self, stack, root: Path, store_env: dict):
        self.stack, self.root, self.store_env = stack, root, store_env
        self.workers: dict[str, CeleryWorker] = {}

    def data_dir(self, machine: str) -> Path:
        path = self.root / "machines" / machine
        path.mkdir(parents=True, exist_ok=True)
        return path

    def worker(self, name: str, *, queues: str = "train", machine: str | None = None, env: dict | None = None,
               app: str = "dlstudio") -> CeleryWorker:
        """The running worker `name` (started, on `machine`'s data dir, if it is not)."""
        worker = self.workers.get(name)
        if worker is not None and worker.proc.poll() is None:
            return worker
        environment = {**self.stack.env, **self.store_env, **(env or {}),
                       "DLSTUDIO_DATA_DIR": str(self.data_dir(machine or name))}
        worker = CeleryWorker(env=environment, queues=queues, pool="prefork" if "ingest" in queues else "solo",
                              log_dir=self.stack.log_dir, name=name, app=app).start()
        self.workers[name] = worker
        return worker

    def only(self, *names: str) -> list[CeleryWorker]:
        """Exactly these workers consume (any other stopped), each answering; in the order given."""
        for name, worker in list(self.workers.items()):
            if name not in names:
                worker.stop(timeout=20)
                del self.workers[name]
        return [worker.wait_ready(self.stack.app) for worker in (self.workers[name] for name in names)]

    def logs(self) -> str:
        return self.stack.logs()

    def idle(self) -> bool:
        """Whether every worker answers with no task under way (a solo worker answers only between tasks)."""
        names = [worker.name for worker in self.workers.values() if worker.proc.poll() is None]
        if not names:
            return True
        active = self.stack.app.control.inspect(destination=names, timeout=0.5).active() or {}
        return set(active) == set(names) and not any(active.values())


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def machines(worker_env, redis_server, s3, tmp_path_factory):
    root = tmp_path_factory.mktemp("object-store")
    with own_stack(env=worker_env, directory=root / "stack", session_redis_url=redis_server.url) as stack:
        stack.start_redis()
        stack.env["DLSTUDIO_DATA_DIR"] = str(root / "machines" / "beat")  # beat only sends the reaper's task
        own = Machines(stack, root, s3.env(BUCKET, PREFIX))
        stack.start_beat()
        yield own
        own.only()


@pytest.fixture(autouse=True)
def settled(transactional_db, machines):
    """At the end, the workers are done with the test's jobs (a run's row says `succeeded` before its job has
    tidied up) before its rows are flushed."""
    yield
    wait_until(machines.idle, timeout=60, interval=0.2, message=lambda: f"the workers to be idle\n{machines.logs()}")


@pytest.fixture
def web(settings, s3, tmp_path):
    """This process as the web server: a data dir of its own, the bucket as its store."""
    from apps.serving import predictors

    settings.DATA_DIR = tmp_path / "web"
    settings.DATA_DIR.mkdir()
    settings.STORAGE_URL = f"s3://{BUCKET}/{PREFIX}"
    settings.AWS_ENDPOINT_URL = s3.endpoint
    for key, value in KEYS.items():
        setattr(settings, key, value)
    predictors.clear_cache()
    yield settings.DATA_DIR
    predictors.clear_cache()


# --- what the tests do, as a user would ---------------------------------------------------------------------------

def upload(api, world, *, name: str, classes: tuple[str, str], per_class: int = 16) -> int:
    """A dataset uploaded through the API and ingested by the ingest worker; its id. The class names make its
    content (and so its pack's) differ from every other test's: a cache keyed by content shares equal packs."""
    archive = zip_bytes(light_and_dark_entries(classes=classes, per_class=per_class, size=8))
    response = api.post("/api/datasets", {"archive": SimpleUploadedFile(f"{name}.zip", archive), "name": name,
                                          "team": world.team.slug}, format="multipart")
    assert response.status_code == 201, response.content
    dataset_id = response.json()["id"]

    def ingested():
        body = api.get(f"/api/datasets/{dataset_id}").json()
        return body if body["status"] != "ingesting" else None

    body = wait_until(ingested, timeout=120, interval=0.2, message="the ingest worker to ingest the dataset")
    assert body["status"] == "ready", body["error"]
    return dataset_id


def start(world, dataset_id: int, config: dict, *, name: str = "exp") -> Run:
    experiment = experiment_create(team=world.team, user=world.editor, name=name,
                                   dataset=Dataset.objects.get(pk=dataset_id), config=config)
    return run_start(experiment=experiment, user=world.editor)


def finished(run, machines, *, timeout: float = 120) -> Run:
    def ended():
        fresh = Run.objects.get(pk=run.pk)
        return fresh if fresh.status in Run.FINISHED_STATUSES else None

    run = wait_until(ended, timeout=timeout, interval=0.1, message=lambda: f"run {run.pk} to end\n{machines.logs()}")
    assert run.status == "succeeded", f"{run.error}\n{machines.logs()}"
    return run


def fetched(log: str) -> list[str]:
    """The names a machine's log says it fetched from the object store, in order (one line per download)."""
    return re.findall(r"fetched (\S+) from the object store", log)


def png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, np.uint8), mode="L").save(out, format="PNG")
    return out.getvalue()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- the tests ---------------------------------------------------------------------------------------------------

def test_upload_ingest_train_predict_and_export_across_machines_that_share_only_the_object_store(
        world, api_as, client, web, s3, machines, caplog):
    machines.worker("ingest", queues="default,ingest")
    machines.worker("train-a")
    ingest, trainer = machines.only("ingest", "train-a")
    already = len(fetched(ingest.log()))
    dataset_id = upload(api_as(world.editor), world, name="first", classes=("dark", "light"))
    run = finished(start(world, dataset_id, THREE_EPOCHS), machines)
    assert run.worker == trainer.name

    # Predict and export in this process: its checkpoint comes from the store into this machine's cache.
    caplog.set_level("INFO", logger="dlstudio.storage")
    api = api_as(world.viewer)
    response = api.post(f"/api/runs/{run.pk}/predict", {"image": SimpleUploadedFile("d.png", png(30))},
                        format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["predictions"][0]["label"] in ("dark", "light")
    viewer = sign_in(client, world.viewer, world.team)
    checkpoint = viewer.get(reverse("run_export_checkpoint", args=[run.pk]))
    assert checkpoint.status_code == 200
    downloaded = b"".join(checkpoint.streaming_content)
    onnx = viewer.get(reverse("run_export_onnx", args=[run.pk]))
    assert onnx.status_code == 200 and len(b"".join(onnx.streaming_content)) > 0

    # What the worker made is in the bucket: the pack (files and manifest), the checkpoints the row names.
    pack = Dataset.objects.get(pk=dataset_id).pack_path
    keys = set(s3.keys(BUCKET))
    assert f"{PREFIX}/manifests/{pack}.json" in keys
    assert any(key.startswith(f"{PREFIX}/objects/{pack}/") for key in keys)
    for name in (run.best_checkpoint, run.last_checkpoint):
        assert {f"{PREFIX}/manifests/{name}.json", f"{PREFIX}/objects/{name}"} <= keys

    # Every machine fetched what another made, once: the upload (ingest), the pack (training), the best
    # checkpoint (this process); the checkpoint downloaded is the one the worker stored.
    assert [name.split("/")[0] for name in fetched(ingest.log())[already:]] == ["uploads"]
    assert fetched(trainer.log()).count(pack) == 1
    assert [r.getMessage().split(" from ")[0] for r in caplog.records if "fetched" in r.getMessage()] == [
        f"fetched {run.best_checkpoint}"]
    manifest = json.loads(s3.client().get_object(Bucket=BUCKET, Key=f"{PREFIX}/manifests/{run.best_checkpoint}.json")
                          ["Body"].read())
    assert manifest["files"][0]["sha256"] == hashlib.sha256(downloaded).hexdigest()

    # This machine never held the worker's checkpoint folder: its only copy is in its cache.
    assert not (web / run.checkpoint_dir).exists() and not (web / "runs").exists()
    in_cache = [path for path in files_under(web / "cache") if path.endswith(Path(run.best_checkpoint).name)]
    assert len(in_cache) == 1 and (web / "cache" / in_cache[0]).read_bytes() == downloaded
    assert not (web / pack).exists()


def test_a_second_run_of_a_dataset_on_the_same_worker_reads_the_pack_from_its_cache(world, api_as, web, machines):
    machines.worker("ingest", queues="default,ingest")
    machines.worker("train-a")
    _, trainer = machines.only("ingest", "train-a")
    dataset_id = upload(api_as(world.editor), world, name="second", classes=("night", "day"))
    runs = [finished(start(world, dataset_id, QUICK, name=f"exp-{i}"), machines) for i in range(2)]
    assert {run.worker for run in runs} == {trainer.name}
    pack = Dataset.objects.get(pk=dataset_id).pack_path
    assert fetched(trainer.log()).count(pack) == 1


def test_two_workers_on_one_cache_fetch_a_pack_once_and_both_train_on_it_whole(world, api_as, web, machines):
    machines.worker("ingest", queues="default,ingest")
    machines.worker("train-c1", machine="shared")
    machines.worker("train-c2", machine="shared")
    _, first_worker, second_worker = machines.only("ingest", "train-c1", "train-c2")
    dataset_id = upload(api_as(world.editor), world, name="third", classes=("dim", "bright"))
    first, second = (start(world, dataset_id, QUICK, name=f"exp-{i}") for i in range(2))
    first, second = finished(first, machines), finished(second, machines)
    assert {first.worker, second.worker} == {first_worker.name, second_worker.name}  # at once, one each
    pack = Dataset.objects.get(pk=dataset_id).pack_path
    assert (fetched(first_worker.log()) + fetched(second_worker.log())).count(pack) == 1


READER = """
import hashlib, sys, time
from pathlib import Path

import django

django.setup()
from dlstudio import storage

name, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:  # both start reading together
    time.sleep(0.005)
asked = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
path = storage.local(name)
given = time.monotonic()
digest = hashlib.sha256()
with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(2**20), b""):
        digest.update(chunk)
print(digest.hexdigest(), asked, given)
"""


def test_two_processes_reading_a_large_object_into_one_cache_at_once_get_it_whole_from_one_download(
        web, machines, tmp_path):
    name = storage.new_upload_path()
    content = os.urandom(50 * 2**20)
    storage.absolute(name).write_bytes(content)
    storage.put(name)  # this process's copy moves into its own cache; the readers have another
    env = {**machines.stack.env, **machines.store_env, "DLSTUDIO_DATA_DIR": str(machines.data_dir("readers")),
           "DJANGO_SETTINGS_MODULE": "dlstudio.settings"}
    go = tmp_path / "go"
    readers = [subprocess.Popen([sys.executable, "-c", READER, name, str(tmp_path / f"ready-{i}"), str(go)],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    wait_until(lambda: all((tmp_path / f"ready-{i}").exists() for i in range(2)), timeout=60,
               message="both readers to set up Django")
    go.touch()
    answers = [reader.communicate(timeout=120) for reader in readers]
    assert [reader.returncode for reader in readers] == [0, 0], answers
    assert [out.split()[0] for out, _ in answers] == [hashlib.sha256(content).hexdigest()] * 2
    downloads = [fetched(err).count(name) for _, err in answers]
    assert sorted(downloads) == [0, 1], answers
    # The other one asked while the download was under way: it waited for the entry, not found it done.
    downloader, waiter = answers[downloads.index(1)][0].split(), answers[downloads.index(0)][0].split()
    assert float(waiter[1]) < float(downloader[2])
    assert not [path for path in files_under(machines.data_dir("readers") / "cache") if ".partial" in path]


def test_a_run_whose_worker_was_killed_resumes_on_another_machine_from_the_checkpoint_in_the_store(
        world, api_as, web, machines):
    # The reaper's worker waits 20 s of silence (not the stack's 6), time enough for the witness on the killed
    # worker's machine to start `manage.py storage_push` and put its note in the store on a loaded machine.
    machines.worker("ingest-patient", queues="default,ingest", env={"DLSTUDIO_STALE_AFTER": "20"})
    # Killed with SIGKILL (as the out-of-memory killer would) once epoch 3 is trained, before it is recorded.
    machines.worker("train-dying", env={"DLSTUDIO_TEST_DIE_AT_EPOCH": "3"}, app="tests.support.dying_worker")
    _, victim = machines.only("ingest-patient", "train-dying")
    dataset_id = upload(api_as(world.editor), world, name="fourth", classes=("shade", "glow"))
    run = start(world, dataset_id, {**QUICK, "epochs": 5})
    wait_until(lambda: victim.proc.poll() is not None, timeout=120,
               message=lambda: f"the worker to be killed\n{machines.logs()}")
    assert victim.proc.returncode == -9
    killed = Run.objects.get(pk=run.pk)
    assert killed.epoch == 2 and killed.last_checkpoint.startswith(f"{killed.checkpoint_dir}/claim-1/")

    rescuer = machines.worker("train-b")  # another machine: a data dir of its own
    machines.only("ingest-patient", "train-b")
    run = finished(run, machines)
    assert run.attempt == 2 and run.worker == rescuer.name
    # Counted as killed (not only lost): the reaper read the witness's note from the store.
    assert run.killed_attempts == 1
    assert list(EpochMetric.objects.filter(run=run).order_by("epoch").values_list("epoch", "attempt")) == [
        (1, 1), (2, 1), (3, 2), (4, 2), (5, 2)]  # resumed after epoch 2, not started again
    names = fetched(rescuer.log())
    assert killed.last_checkpoint in names  # the checkpoint came from the store, not from a shared disk
    assert not (machines.data_dir("train-b") / killed.checkpoint_dir / "claim-1").exists()


@pytest.fixture
def azurite(tmp_path):
    if not Azurite.available():
        pytest.skip("azurite-blob is not installed (npm install -g azurite)")
    server = Azurite(tmp_path / "azurite").start()
    yield server
    server.stop()


def test_upload_ingest_train_and_predict_across_machines_that_share_only_an_azure_blob_container(
        world, api_as, client, web, settings, machines, azurite):
    container = azurite.create_container("dlstudio-itest")
    store = azurite.env(container, PREFIX)
    settings.STORAGE_URL, settings.AZURE_CONNECTION_STRING = store["DLSTUDIO_STORAGE_URL"], azurite.connection_string
    machines.worker("ingest-azure", queues="default,ingest", env=store)
    machines.worker("train-azure", env=store)
    ingest, trainer = machines.only("ingest-azure", "train-azure")
    dataset_id = upload(api_as(world.editor), world, name="azure", classes=("ink", "paper"))
    run = finished(start(world, dataset_id, QUICK), machines)
    assert run.worker == trainer.name

    response = api_as(world.viewer).post(f"/api/runs/{run.pk}/predict", {"image": SimpleUploadedFile(
        "d.png", png(30))}, format="multipart")
    assert response.status_code == 200, response.content
    viewer = sign_in(client, world.viewer, world.team)
    assert viewer.get(reverse("run_export_onnx", args=[run.pk])).status_code == 200

    pack = Dataset.objects.get(pk=dataset_id).pack_path
    names = set(azurite.names(container))
    for name in (pack, run.best_checkpoint, run.last_checkpoint):
        assert f"{PREFIX}/manifests/{name}.json" in names
    assert [name.split("/")[0] for name in fetched(ingest.log())] == ["uploads"]
    assert fetched(trainer.log()) == [pack]
    assert not (web / "runs").exists() and not (web / pack).exists()
