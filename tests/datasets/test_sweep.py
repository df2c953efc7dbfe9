"""What an upload leaves behind when its process dies half-way goes an hour later, and nothing else."""
import os
import time

import pytest

from apps.datasets.models import Dataset
from apps.datasets.services import datasets_sweep
from apps.weights.services import weights_sweep
from dlstudio import storage

pytestmark = pytest.mark.django_db
AN_HOUR_AGO = time.time() - 3700


def file(relative: str, *, old: bool):
    path = storage.absolute(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"part of an upload")
    if old:
        os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    return path


def test_half_received_and_unnamed_uploads_go_once_an_hour_old(world):
    half_received, arriving = file("tmp/abc.upload", old=True), file("tmp/def.upload", old=False)
    orphan, named = file("uploads/1.upload", old=True), file("uploads/2.upload", old=True)
    Dataset.objects.create(team=world.team, name="waiting", upload_path="uploads/2.upload")
    assert datasets_sweep() == {"temporaries": 1, "uploads": 1}
    assert not half_received.exists() and not orphan.exists() and arriving.exists() and named.exists()


def test_weights_uploads_that_were_being_checked_go_once_an_hour_old(world):
    stale, checking, kept = file("weights/a.part", old=True), file("weights/b.part", old=False), file(
        "weights/c.pth", old=True)
    assert weights_sweep() == 1
    assert not stale.exists() and checking.exists() and kept.exists()
