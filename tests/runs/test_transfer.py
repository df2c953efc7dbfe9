"""Transfer learning from an earlier run, on a small real task: scikit-learn's handwritten digits."""
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from apps.datasets.ingest import dataset_ingest
from apps.datasets.services import dataset_create
from apps.experiments.services import experiment_create
from apps.runs.models import Run
from apps.runs.services import run_start
from apps.runs.training import run_train

pytestmark = pytest.mark.django_db

BASE = {"batch_size": 32, "hidden_units": [64], "lr": 0.003}


def digits_dataset(team, path, digits, *, test_fraction):
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = np.clip(np.rint(data.images * (255 / 16)), 0, 255).astype(np.uint8)
    with zipfile.ZipFile(path, "w") as archive:
        for i, (image, label) in enumerate(zip(pixels, data.target)):
            if label in digits:
                out = io.BytesIO()
                Image.fromarray(image, mode="L").save(out, format="PNG")
                archive.writestr(f"{label}/{i}.png", out.getvalue())
    options = {"val_fraction": 0.1, "test_fraction": test_fraction, "image_size": None, "resize_mode": "squash",
               "color": "auto", "seed": 0}
    dataset = dataset_create(team=team, user=None, name=f"digits {min(digits)}-{max(digits)}", source_path=path,
                             options=options)
    dataset_ingest(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    return dataset


def trained(world, dataset, config) -> Run:
    experiment = experiment_create(team=world.team, user=world.editor, name="x", dataset=dataset,
                                   config=config)
    run = run_start(experiment=experiment, user=world.editor)
    assert run_train(run_id=run.pk, worker="w@test") == "completed"
    run.refresh_from_db()
    return run


def test_a_run_started_from_the_other_halfs_run_beats_scratch(world, tmp_path):
    first_half = digits_dataset(world.team, tmp_path / "a.zip", {0, 1, 2, 3, 4}, test_fraction=0.1)
    # Few training images of the new classes: where starting weights matter.
    second_half = digits_dataset(world.team, tmp_path / "b.zip", {5, 6, 7, 8, 9}, test_fraction=0.8)
    parent = trained(world, first_half, {**BASE, "epochs": 8})
    assert parent.test_acc > 0.9

    scratch, transferred = [], []
    for seed in (0, 1, 2, 3):
        config = {**BASE, "epochs": 2, "seed": seed}
        scratch.append(trained(world, second_half, config).test_acc)
        child = trained(world, second_half, {**config, "pretrained": {"run": parent.pk}})
        assert child.parent == parent
        transferred.append(child.test_acc)
    # Same epochs, same data, same seeds: only the starting weights differ.
    assert np.mean(transferred) > np.mean(scratch) + 0.02, (scratch, transferred)
    # The run page offers to overlay the transferred run with one trained from scratch.
    from django.test import Client

    client = Client()
    client.force_login(world.viewer)
    page = client.get(f"/runs/{child.pk}/").content.decode()
    assert 'id="compare-scratch"' in page and "trained from scratch" in page


def test_transfer_across_different_classes_replaces_the_head(world, tmp_path):
    import torch

    from dlstudio import storage
    from workers.engine.train.checkpoint import load_checkpoint

    five = digits_dataset(world.team, tmp_path / "a.zip", {0, 1, 2, 3, 4}, test_fraction=0.1)
    three = digits_dataset(world.team, tmp_path / "b.zip", {7, 8, 9}, test_fraction=0.5)
    parent = trained(world, five, {**BASE, "epochs": 1})
    child = trained(world, three, {**BASE, "epochs": 1, "lr": 1e-9, "pretrained": {"run": parent.pk}})
    before = load_checkpoint(storage.absolute(parent.best_checkpoint))["model"]
    after = load_checkpoint(storage.absolute(child.best_checkpoint))["model"]
    last = [k for k in after if k.startswith("head.") and k.endswith("weight")][-1]
    assert after[last].shape[0] == 3 and before[last].shape[0] == 5  # a new output layer for 3 classes
    conv = next(k for k in after if k.startswith("features.") and k.endswith("weight"))
    assert torch.allclose(after[conv], before[conv], atol=1e-5)  # the features came from the parent
