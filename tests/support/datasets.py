"""Small, learnable datasets made through the real ingest path."""
import io
import zipfile

import numpy as np
from PIL import Image

from apps.datasets.models import Dataset
from apps.datasets.services import dataset_create, dataset_ingest
from tests.support.services import wait_until

OPTIONS = {"val_fraction": 0.2, "test_fraction": 0.2, "image_size": None, "resize_mode": "squash",
           "color": "auto", "seed": 0}


def light_and_dark_zip(path, per_class=30, size=8):
    """Two classes a CNN separates in an epoch or two: dark and light noisy squares."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        for label, base in (("dark", 50), ("light", 200)):
            for i in range(per_class):
                pixels = np.clip(base + rng.normal(0, 25, (size, size)), 0, 255).astype(np.uint8)
                out = io.BytesIO()
                Image.fromarray(pixels, mode="L").save(out, format="PNG")
                archive.writestr(f"{label}/{i:03d}.png", out.getvalue())
    return path


def ready_dataset(team, path, *, name="Light and dark", **zip_options) -> Dataset:
    dataset = dataset_create(team=team, user=None, name=name, source_path=light_and_dark_zip(path, **zip_options),
                             options=OPTIONS)
    # In-process here; where worker processes run (transactional tests) the ingest task may claim it
    # first, and then this call returns at once: either way, wait for the row to leave `ingesting`.
    dataset_ingest(dataset_id=dataset.pk)
    wait_until(lambda: Dataset.objects.exclude(status=Dataset.Status.INGESTING).filter(pk=dataset.pk).exists(),
               timeout=120, message="the dataset to be ingested")
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.error
    return dataset
