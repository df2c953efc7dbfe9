"""An ingest worker killed mid-ingest (the out-of-memory killer, a deploy gone wrong): the dataset does not
stay `ingesting` forever. The reaper fails it with a sentence and removes the upload and the half pack."""
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from dlstudio import storage
from apps.datasets.models import Dataset
from apps.datasets.services import INGEST_LOST_SENTENCE, dataset_create
from tests.support.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def slow_zip(path, images=6000):
    """Thousands of 640x480 JPEGs: seconds of decoding, long enough to be killed in the middle."""
    ramp = (np.indices((480, 640)).sum(0) % 256).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(np.stack([ramp, ramp[::-1], ramp], -1)).save(out, format="JPEG", quality=90)
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(images):
            archive.writestr(f"{'ab'[i % 2]}/{i}.jpg", out.getvalue())
    return path


def test_a_worker_killed_mid_ingest_leaves_a_failed_dataset_and_no_files(world, stack, tmp_path):
    stack.start_redis()
    general = stack.start_general()
    stack.start_beat()
    stack.wait_ready()
    dataset = dataset_create(team=world.team, user=world.editor, name="killed mid-ingest",
                             source_path=slow_zip(tmp_path / "slow.zip"),
                             options={"val_fraction": 0.2, "test_fraction": 0.1, "image_size": 32,
                                      "resize_mode": "squash", "color": "auto", "seed": 0})
    upload = storage.absolute(dataset.upload_path)
    wait_until(lambda: Dataset.objects.filter(pk=dataset.pk, progress__gte=0.05, status="ingesting").exists(),
               timeout=60, interval=0.05, message=lambda: "the ingest to be decoding\n" + stack.logs())
    assert storage.packs_of(dataset.pk)  # a pack is being written

    general.signal(9)  # the worker and its decoders, at once
    general.proc.wait(timeout=10)
    stack.start_general().wait_ready(stack.app)  # a fresh worker, which runs the reaper's rounds

    # The reaper marks the row first, then removes the files.
    wait_until(lambda: Dataset.objects.filter(pk=dataset.pk, status="failed").exists()
               and not storage.packs_of(dataset.pk) and not upload.exists(), timeout=60,
               message=lambda: "the reaper to give the dataset up and remove its files\n" + stack.logs())
    dataset.refresh_from_db()
    assert dataset.error == INGEST_LOST_SENTENCE and dataset.upload_path == "" and dataset.pack_path == ""
