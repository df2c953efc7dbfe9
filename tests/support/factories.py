"""What tests make, made one way: images and archives (with Pillow, never files from elsewhere), a ready
dataset, an experiment, a trained run, a signed-in client.

Everything goes through the product's own services and in-process jobs, so what a test builds is
what a user's upload or click would build.
"""
from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
from PIL import Image

from tests.support.services import wait_until

PASSWORD = "a-long-test-password"
# A run that trains in well under a second on a light-and-dark dataset.
QUICK = {"epochs": 2, "batch_size": 8, "hidden_units": [16], "seed": 1}
# The packing options of a ready dataset: a test split big enough to evaluate on.
OPTIONS = {"val_fraction": 0.2, "test_fraction": 0.2, "image_size": None, "resize_mode": "squash",
           "color": "auto", "seed": 0}


# --- images and archives ---------------------------------------------------------------------

def png(seed: int, size=(12, 12), mode="RGB") -> bytes:
    """A distinct small image per seed (random pixels, so no two seeds are duplicates)."""
    rng = np.random.default_rng(seed)
    channels = 1 if mode == "L" else 3
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode=mode)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def class_entries(classes=("cat", "dog"), per_class=12, size=(12, 12), prefix="", mode="RGB") -> dict:
    """{name: PNG bytes} laid out <class>/<image>, every image distinct."""
    entries, seed = {}, 0
    for name in classes:
        for i in range(per_class):
            entries[f"{prefix}{name}/{i:03d}.png"] = png(seed, size, mode)
            seed += 1
    return entries


def light_and_dark_entries(classes=("dark", "light"), per_class=30, size=8, first_name=None) -> dict:
    """Two classes a CNN separates in an epoch or two: dark and light noisy squares, under any folder
    names (`first_name`: the file name of each class's first image)."""
    rng = np.random.default_rng(0)
    entries = {}
    for label, base in zip(classes, (50, 200)):
        for i in range(per_class):
            pixels = np.clip(base + rng.normal(0, 25, (size, size)), 0, 255).astype(np.uint8)
            out = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(out, format="PNG")
            name = first_name if first_name and i == 0 else f"{i:03d}.png"
            entries[f"{label}/{name}"] = out.getvalue()
    return entries


def zip_bytes(entries: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def tar_bytes(entries: dict, *, gz=False, symlinks: dict | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return out.getvalue()


def light_and_dark_zip(path, **entry_options):
    path.write_bytes(zip_bytes(light_and_dark_entries(**entry_options)))
    return path


# --- objects of the product ------------------------------------------------------------------

def ready_dataset(team, path, *, name="Light and dark", user=None, options=None, **entry_options):
    """A dataset of `team` made from a light-and-dark zip at `path`, ingested in this process; `options`
    change the packing options."""
    from apps.datasets.ingest import dataset_ingest
    from apps.datasets.models import Dataset
    from apps.datasets.services import dataset_create

    dataset = dataset_create(team=team, user=user, name=name, source_path=light_and_dark_zip(path, **entry_options),
                             options={**OPTIONS, **(options or {})})
    # In-process here; where worker processes run (transactional tests) the ingest task may claim it
    # first, and then this call returns at once: either way, wait for the row to leave `ingesting`.
    dataset_ingest(dataset_id=dataset.pk)
    wait_until(lambda: Dataset.objects.exclude(status=Dataset.Status.INGESTING).filter(pk=dataset.pk).exists(),
               timeout=120, message="the dataset to be ingested")
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.READY, dataset.error
    return dataset


def make_experiment(team, user, dataset, config=None, *, name="quick"):
    from apps.experiments.services import experiment_create

    return experiment_create(team=team, user=user, name=name, dataset=dataset,
                             config=QUICK if config is None else config)


def trained_run(experiment, user, overrides=None):
    """A run of `experiment` trained in this process (what the `runs.train` task runs), succeeded."""
    from apps.runs.models import Run
    from apps.runs.services import run_start
    from apps.runs.training import run_train

    run = run_start(experiment=experiment, user=user, overrides=overrides)
    run_train(run_id=run.pk, worker="w@test")
    # Where worker processes run, one of them may have claimed it first.
    wait_until(lambda: Run.objects.filter(pk=run.pk, status__in=Run.FINISHED_STATUSES).exists(), timeout=120,
               message="the run to be trained")
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    return run


def form_data(dataset, **changes):
    """What the experiment form posts: every field, at the values a quick run uses."""
    data = {"name": "from the form", "dataset": dataset.pk, "arch": "smallcnn", "init": "default",
            "hidden_units": "32,16", "dropout": "0.25", "batch_norm": "on", "pretrained": "", "pretrained_run": "",
            "freeze_backbone_epochs": "0", "epochs": "3", "batch_size": "16", "optimizer": "adam", "lr": "0.001",
            "momentum": "0.9", "weight_decay": "0", "lr_schedule": "constant", "step_size": "5", "gamma": "0.1",
            "warmup_epochs": "0", "label_smoothing": "0", "early_stopping__patience": "0",
            "early_stopping__monitor": "val_loss", "normalize": "channel", "augment__crop_pad": "0",
            "augment__zoom": "0", "augment__rotate": "0", "augment__color_jitter": "0", "amp": "auto",
            "device": "auto", "seed": "0"}
    data.update(changes)
    return data


def sign_in(client, user, team=None):
    """`client` signed in as `user`, working in `team` when given (a team it is not in is ignored, as the
    switcher would)."""
    client.force_login(user)
    if team is not None:
        session = client.session
        session["team"] = team.slug
        session.save()
    return client
