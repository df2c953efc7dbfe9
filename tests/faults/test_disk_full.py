"""A full disk while packing a dataset or writing a checkpoint: one sentence, nothing half-written.

The always-run tests make the disk "full" with RLIMIT_FSIZE in a forked child that does the real
write (tests/support/diskfull.py): no root, no mount, the same every time. Where the tests run as
root, a tiny tmpfs adds the real thing, ENOSPC, and the SIGBUS a memory-mapped write on a full disk
would die of.
"""
import os
import subprocess

import pytest

from apps.datasets.models import Dataset
from apps.datasets import ingest
from apps.datasets.ingest import dataset_ingest
from apps.datasets.services import dataset_create
from apps.experiments.services import experiment_create
from apps.runs.models import EpochMetric
from apps.runs.services import run_start
from apps.runs.training import run_train
from dlstudio import storage
from tests.support.factories import OPTIONS, light_and_dark_zip, ready_dataset
from tests.support.diskfull import with_file_size_limit
from workers.engine.ingest import pipeline
from workers.engine.train import loop
from workers.engine.train.checkpoint import load_checkpoint, save_checkpoint
from workers.engine.errors import IngestError
from workers.engine.ingest.pipeline import PackOptions

pytestmark = pytest.mark.django_db

# 60 grayscale 64x64 images: a 240 KB image array, over the 64 KB a file may grow to.
LIMIT = 64 * 1024
BIG = {"per_class": 30, "size": 64}


def files_under(directory) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if not p.is_dir())


def test_a_full_disk_while_packing_fails_the_dataset_with_a_sentence_and_leaves_no_file(
        world, isolated_data_dir, monkeypatch, tmp_path):
    real = pipeline.build_pack

    def on_a_full_disk(source, out_dir, options, *, limits=None, on_progress=None, processes=None):
        # The child cannot report progress: that writes to the database.
        return with_file_size_limit(LIMIT, real, source, out_dir, options, limits=limits, processes=processes)

    monkeypatch.setattr(ingest, "build_pack", on_a_full_disk)  # where the ingest job finds it
    dataset = dataset_create(team=world.team, user=world.editor, name="big", options=OPTIONS,
                             source_path=light_and_dark_zip(tmp_path / "big.zip", **BIG))
    dataset_ingest(dataset_id=dataset.pk)
    dataset = Dataset.objects.get(pk=dataset.pk)
    assert dataset.status == "failed"
    assert dataset.error.startswith("The disk is full: ") and dataset.error.count(".") == 1, dataset.error
    assert dataset.pack_path == "" and dataset.upload_path == ""
    assert files_under(isolated_data_dir) == []  # no pack, no `.partial`, no upload


def test_the_engine_leaves_no_partial_pack_when_the_image_file_cannot_be_made(tmp_path):
    out = tmp_path / "packs" / "pack"
    out.parent.mkdir()
    source = light_and_dark_zip(tmp_path / "big.zip", **BIG)
    with pytest.raises(IngestError, match="^The disk is full: "):
        with_file_size_limit(LIMIT, pipeline.build_pack, source, out, PackOptions(), processes=1)
    assert files_under(out.parent) == [] and list(out.parent.iterdir()) == []  # no `pack.partial` either


def test_a_full_disk_while_writing_a_checkpoint_fails_the_run_and_keeps_the_previous_checkpoint(
        world, isolated_data_dir, monkeypatch, tmp_path):
    dataset = ready_dataset(world.team, tmp_path / "light-dark.zip")
    experiment = experiment_create(team=world.team, user=world.editor, name="x", dataset=dataset,
                                   config={"epochs": 5, "batch_size": 8, "hidden_units": [16], "seed": 1})
    real = loop.save_checkpoint

    def disk_full_from_epoch_3(state, path):
        if state["epoch"] < 3:
            return real(state, path)
        return with_file_size_limit(1024, real, state, path)

    monkeypatch.setattr(loop, "save_checkpoint", disk_full_from_epoch_3)
    run = run_start(experiment=experiment, user=world.editor)
    assert run_train(run_id=run.pk, worker="w@test") == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and run.lease_owner == ""
    assert run.error.startswith("The disk is full: this run could not write its files (File too large)")
    # Epoch 3 is not recorded: its checkpoint never was whole. The row names the last that is.
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", flat=True)) == [1, 2]
    folder = storage.absolute(run.last_checkpoint).parent
    # No temporary file left, and only the files the row names.
    assert {storage.relative(p) for p in folder.iterdir()} == {run.last_checkpoint, run.best_checkpoint}
    assert load_checkpoint(storage.absolute(run.last_checkpoint))["epoch"] == 2 == run.epoch
    assert load_checkpoint(storage.absolute(run.best_checkpoint))["epoch"] == run.best_epoch


# --- The real thing, where the tests may mount a file system ---------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (root only; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE tests above cover the same paths")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_packing_onto_a_really_full_disk_is_the_same_sentence_not_a_crash(tiny_disk, tmp_path):
    """1.3 MB of images onto 1 MiB: ENOSPC, the same sentence, nothing left. In a child, so that a
    memory-mapped write into a hole of the file (SIGBUS on a full disk) would fail the test, not pytest."""
    source = light_and_dark_zip(tmp_path / "big.zip", per_class=40, size=128)
    with pytest.raises(IngestError, match="^The disk is full: "):
        with_file_size_limit(None, pipeline.build_pack, source, tiny_disk / "pack", PackOptions(), processes=1)
    assert files_under(tiny_disk) == []


def test_a_checkpoint_onto_a_really_full_disk_leaves_the_previous_one(tiny_disk):
    import torch

    path = save_checkpoint({"epoch": 1, "model": {"w": torch.zeros(1000)}}, tiny_disk / "last.pt")
    filler = tiny_disk / "filler"
    with open(filler, "wb", buffering=0) as out:  # fill what is left
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    with pytest.raises(OSError) as caught:
        save_checkpoint({"epoch": 2, "model": {"w": torch.zeros(100_000)}}, path)
    assert caught.value.errno == 28  # ENOSPC
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "last.pt"]
