"""Object storage: ingest time and the time until a run's first batch, with the data dir as the store and with S3.

    .venv/bin/python bench/storage.py                            # 20,000 32x32 RGB images, 5 repeats
    .venv/bin/python bench/storage.py --images 2000 --repeat 1   # a smoke run in a minute

Everything happens in a temporary folder: its own SQLite database (migrated here), data dirs, and a local S3
server (tests/support/objectstore.py: moto's standalone server, a separate process on 127.0.0.1, which the
product reaches as any S3-compatible endpoint). The dataset is --images synthetic 32x32 RGB PNGs of 10 classes
in a zip, made once with Pillow.

Three ways a training worker finds the pack:
  - file://   DLSTUDIO_STORAGE_URL empty (the default): the pack is a folder of the data dir, used in place;
  - s3 cold   DLSTUDIO_STORAGE_URL=s3://...: a worker with a fresh data dir fetches the pack into its cache;
  - s3 warm   the same worker's second run: the pack is in its cache (this process's memo of fetched names is
              cleared first: the manifest is read from the store again, the entry found in the cache).
The S3 client is made and used once before each timing, as a running worker has it (its first job pays that,
about 0.1 s).

Measured through the code the jobs run, in this process (the broker is not used):
  - ingest: `dataset_create` (the upload is stored) + `dataset_ingest` (decode, pack, store the pack), until
    the dataset is ready;
  - first batch: `run_train` of a new run of a smallcnn, from the call until the engine's first `on_batch`
    callback (claim, `storage.local(pack)`, the pack opened, the model built, one training step); the run is
    stopped there.
Each repeat does all of them; the table shows the median (and min, max) of --repeat. Prints, never asserts.
Goal: the warm cache's first batch within 5% of file://. The last line says it both ways: the medians of the
whole first batch, and what `storage.local` adds (the medians move more than that from run to run).
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.05  # warm cache's first batch at most 5% slower than file://
BUCKET = "dlstudio-bench"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=20_000, help="images in the dataset (default 20,000)")
    p.add_argument("--repeat", type=int, default=5, help="repeats of every measurement (default 5)")
    p.add_argument("--batch-size", type=int, default=64, help="the run's batch size (default 64)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (and print where it is)")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django(folder: Path) -> None:
    """A private database and data dir, chosen before Django reads its settings; Redis where nothing listens."""
    os.environ["DLSTUDIO_DATA_DIR"] = str(folder / "file")
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'db.sqlite3'}"
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    os.environ["DLSTUDIO_STORAGE_URL"] = ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dlstudio.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def images_zip(path: Path, count: int, classes: int = 10) -> Path:
    """`count` 32x32 RGB PNGs, `class_NN/<i>.png`: a smooth blob of the class's colour plus noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = rng.uniform(40, 255, size=(classes, 3))
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(count):
            label = i % classes
            cx, cy, r = rng.uniform(4, 28, size=2).tolist() + [rng.uniform(4, 14)]
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
            pixels = np.clip(blob * colours[label] + rng.normal(0, 10, size=(32, 32, 3)), 0, 255).astype(np.uint8)
            out = io.BytesIO()
            Image.fromarray(pixels).save(out, format="PNG")
            archive.writestr(f"class_{label:02d}/{i:05d}.png", out.getvalue())
    return path


class Machine:
    """Which data dir and store this process acts as now (the settings the storage layer reads each call)."""

    def __init__(self, s3):
        from django.conf import settings

        from tests.support.objectstore import KEYS

        self.settings, self.s3, self.keys = settings, s3, KEYS

    def file(self, data_dir: Path) -> None:
        self.settings.STORAGE_URL, self.settings.DATA_DIR = "", data_dir
        data_dir.mkdir(parents=True, exist_ok=True)

    def on_s3(self, data_dir: Path) -> None:
        s = self.settings
        s.STORAGE_URL, s.DATA_DIR = f"s3://{BUCKET}/dlstudio", data_dir
        s.AWS_ENDPOINT_URL = self.s3.endpoint
        s.AWS_ACCESS_KEY_ID = self.keys["AWS_ACCESS_KEY_ID"]
        s.AWS_SECRET_ACCESS_KEY = self.keys["AWS_SECRET_ACCESS_KEY"]
        s.AWS_DEFAULT_REGION = self.keys["AWS_DEFAULT_REGION"]
        data_dir.mkdir(parents=True, exist_ok=True)
        from dlstudio import storage

        # The store's client is made once per worker process, and its first request loads boto3's models (about
        # 0.1 s in all): a running worker has done both at its first job. This process switches between machines,
        # which makes the client anew: here, outside the timings, with a read of a name that is not there.
        storage._store().read("manifests/bench-warm-up.json")


def ingest(team, user, source: Path, name: str):
    from apps.datasets.ingest import dataset_ingest
    from apps.datasets.services import dataset_create

    started = time.perf_counter()
    dataset = dataset_create(team=team, user=user, name=name, source_path=source,
                             options={"val_fraction": 0.1, "test_fraction": 0.1, "image_size": None,
                                      "resize_mode": "squash", "color": "auto", "seed": 0})
    dataset_ingest(dataset_id=dataset.pk)
    seconds = time.perf_counter() - started
    dataset.refresh_from_db()
    if dataset.status != "ready":
        raise SystemExit(f"the dataset did not ingest: {dataset.error}")
    return dataset, seconds


class FirstBatch:
    """Seconds from `run_train` until the engine's first on_batch; the run stops there."""

    def __init__(self):
        from apps.runs import training

        self.training, self.at = training, None
        real = training.Tracker.on_batch
        bench = self

        def on_batch(tracker, progress):
            if bench.at is None:
                bench.at = time.perf_counter()
            real(tracker, progress)
            return True  # stop: the rest of the epoch is not measured

        training.Tracker.on_batch = on_batch

    def measure(self, experiment, user) -> float:
        from apps.runs.services import run_start
        from dlstudio import jobs

        run = run_start(experiment=experiment, user=user)
        jobs.release_memory()  # what a worker does after each job: the last run's memory is not freed in this one
        self.at = None
        started = time.perf_counter()
        outcome = self.training.run_train(run_id=run.pk, worker="bench@storage")
        if self.at is None:
            run.refresh_from_db()
            raise SystemExit(f"the run never reached its first batch: {outcome} {run.error}")
        return self.at - started


class LocalCalls:
    """Seconds spent in `storage.local` for packs (what the store adds before the engine opens the pack)."""

    def __init__(self):
        from dlstudio import storage

        self.seconds = 0.0
        real = storage.local
        bench = self

        def local(relative):
            started = time.perf_counter()
            try:
                return real(relative)
            finally:
                if relative.startswith("packs/"):
                    bench.seconds += time.perf_counter() - started

        storage.local = local  # the training job calls it as storage.local

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class Fetches:
    """The storage layer's "fetched ... in S s" lines: the seconds of each download into the cache."""

    def __init__(self):
        self.seconds: list[float] = []
        handler = logging.Handler()
        handler.emit = self.emit
        log = logging.getLogger("dlstudio.storage")
        log.addHandler(handler)
        log.setLevel(logging.INFO)

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("fetched packs/"):
            self.seconds.append(float(message.rsplit(" in ", 1)[1].split()[0]))


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):8.3f} s  ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dlstudio-bench-storage-"))
    s3 = None
    try:
        setup_django(folder)
        from tests.support.objectstore import S3Server

        s3 = S3Server(folder / "s3").start()
        s3.create_bucket(BUCKET)
        run_benchmark(args, folder, s3)
    finally:
        if s3 is not None:
            s3.stop()
        if args.keep:
            print(f"\nKept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def run_benchmark(args, folder: Path, s3) -> None:
    import django
    import torch

    from apps.experiments.services import experiment_create
    from apps.teams.services import user_upsert
    from dlstudio import storage
    from dlstudio.version import code_version
    from workers import broker

    broker.send = lambda task, *a: None  # ingest and training run here, in this process
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"dlstudio storage benchmark · code {code_version()} · Django {django.__version__} · torch "
          f"{torch.__version__}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"folder {folder}; S3: moto server at {s3.endpoint}")

    started = time.perf_counter()
    source = images_zip(folder / "images.zip", args.images)
    print(f"{args.images:,} 32x32 RGB PNGs, 10 classes: {source.stat().st_size / 1e6:.1f} MB zip, made in "
          f"{time.perf_counter() - started:.1f} s")
    user, team, _ = user_upsert(username="bench", password="bench-password-not-used", team_slug="bench-lab",
                                role="owner")
    machine, first_batch, fetches, local_calls = Machine(s3), FirstBatch(), Fetches(), LocalCalls()
    config = {"arch": "smallcnn", "epochs": 1, "batch_size": args.batch_size, "seed": 0}
    figures: dict[str, list[float]] = {key: [] for key in (
        "ingest file", "ingest s3", "batch file", "batch cold", "batch warm", "local file", "local cold",
        "local warm")}
    pack_bytes = 0
    for repeat in range(args.repeat):
        # file://: one data dir for the web process and the worker (one machine, or a shared mount).
        machine.file(folder / "file")
        dataset, seconds = ingest(team, user, source, f"file {repeat}")
        figures["ingest file"].append(seconds)
        file_experiment = experiment_create(team=team, user=user, name=f"file {repeat}", dataset=dataset,
                                            config=config)
        pack_bytes = sum(p.stat().st_size for p in storage.absolute(dataset.pack_path).rglob("*") if p.is_file())
        # s3://: the web machine ingests and stores; a worker with a data dir of its own trains.
        machine.on_s3(folder / f"web-{repeat}")
        dataset, seconds = ingest(team, user, source, f"s3 {repeat}")
        figures["ingest s3"].append(seconds)
        s3_experiment = experiment_create(team=team, user=user, name=f"s3 {repeat}", dataset=dataset, config=config)

        if repeat == 0:  # untimed: the first run of a process pays for imports and first allocations
            machine.file(folder / "file")
            first_batch.measure(file_experiment, user)
            local_calls.take()

        # First batches: the cold one, then file:// and the warm cache in an order turned each repeat, so that
        # the machine's drift (and what the previous run left running) hits both alike.
        machine.on_s3(folder / f"worker-{repeat}")  # fresh: an empty cache
        figures["batch cold"].append(first_batch.measure(s3_experiment, user))
        figures["local cold"].append(local_calls.take())

        def file_run():
            machine.file(folder / "file")
            figures["batch file"].append(first_batch.measure(file_experiment, user))
            figures["local file"].append(local_calls.take())

        def warm_run():
            machine.on_s3(folder / f"worker-{repeat}")
            storage._fetched.clear()  # the manifest is read again: only the cache remembers the pack
            figures["batch warm"].append(first_batch.measure(s3_experiment, user))
            figures["local warm"].append(local_calls.take())

        for step in ((file_run, warm_run) if repeat % 2 == 0 else (warm_run, file_run)):
            step()
        print(f"repeat {repeat + 1}/{args.repeat}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in figures.items()),
              flush=True)
        shutil.rmtree(folder / f"web-{repeat}", ignore_errors=True)
        shutil.rmtree(folder / f"worker-{repeat}", ignore_errors=True)

    print(f"\npack: {pack_bytes / 1e6:.1f} MB; {args.repeat} repeats, median (min-max)")
    print(f"{'':34}{'file://':>26}{'s3:// cold cache':>28}{'s3:// warm cache':>28}")
    print(f"{'ingest (upload to ready)':34}{summary(figures['ingest file']):>26}{summary(figures['ingest s3']):>28}"
          f"{'':>28}")
    print(f"{'run start to first batch':34}{summary(figures['batch file']):>26}"
          f"{summary(figures['batch cold']):>28}{summary(figures['batch warm']):>28}")
    print(f"{'  of which storage.local(pack)':34}{summary(figures['local file']):>26}"
          f"{summary(figures['local cold']):>28}{summary(figures['local warm']):>28}")
    print(f"{'  of which the download':34}{'':>26}{summary(fetches.seconds):>28}{'':>28}")
    file_s, warm_s = statistics.median(figures["batch file"]), statistics.median(figures["batch warm"])
    ratio = warm_s / file_s - 1
    # The first batches differ by more than the store's share from one run to the next; what the warm cache
    # adds for certain is its storage.local (reading the manifest, finding the entry).
    added = statistics.median(figures["local warm"]) - statistics.median(figures["local file"])
    print(f"\nwarm cache vs file://, first batch: {ratio:+.1%} of the medians; storage.local adds "
          f"{added * 1000:.0f} ms "
          f"= {added / file_s:+.1%} of file://'s first batch (goal: within {GOAL:.0%}: "
          f"{'met' if max(ratio, added / file_s) <= GOAL else 'NOT met'})")


if __name__ == "__main__":
    main()
