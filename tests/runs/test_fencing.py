"""Fencing in-process: each claim writes its own checkpoint files, the row names those that are the run's,
and every write about the run is conditional on the claim's lease (docs/RELIABILITY.md)."""
import hashlib
import os
import time

import pytest
from django.utils import timezone

from apps.runs import training
from apps.runs.models import EpochMetric, Evaluation, Run
from apps.runs.services import run_cancel, run_requeue, run_start, runs_reap, runs_sweep
from apps.runs.training import run_train
from dlstudio import storage
from workers.engine import load_checkpoint

pytestmark = pytest.mark.django_db
HOUR = 3600


def fresh(run) -> Run:
    return Run.objects.get(pk=run.pk)


def epoch_of(relative: str) -> int:
    return load_checkpoint(storage.absolute(relative))["epoch"]


def test_every_epoch_is_recorded_with_the_files_that_hold_it(world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    assert run_train(run_id=run.pk, worker="w@test") == "completed"
    run = fresh(run)
    assert run.fence == 1 and run.last_checkpoint.startswith(f"{run.checkpoint_dir}/claim-1/")
    assert epoch_of(run.last_checkpoint) == run.epoch == 2
    assert epoch_of(run.best_checkpoint) == run.best_epoch
    evaluation = Evaluation.objects.get(run=run)
    assert evaluation.checkpoint == run.best_checkpoint
    best = storage.absolute(run.best_checkpoint).read_bytes()
    assert evaluation.checkpoint_sha256 == hashlib.sha256(best).hexdigest()
    # Nothing else stays in the claim's folder: the files the row stopped naming went as it moved on.
    folder = storage.absolute(run.last_checkpoint).parent
    assert {storage.relative(p) for p in folder.iterdir()} == {run.last_checkpoint, run.best_checkpoint}


def test_a_worker_that_lost_its_lease_records_nothing_and_names_no_file(world, experiment, monkeypatch):
    run = run_start(experiment=experiment, user=world.editor)
    record = training.Tracker.on_checkpoint

    def handed_on_after_the_first_epoch(self, metrics, **files):
        if metrics["epoch"] == 2:  # the reaper gave the run to another claim meanwhile
            Run.objects.filter(pk=run.pk).update(lease_owner="someone-else", fence=7)
        record(self, metrics, **files)

    monkeypatch.setattr(training.Tracker, "on_checkpoint", handed_on_after_the_first_epoch)
    run_train(run_id=run.pk, worker="w1@test")
    run = fresh(run)
    assert run.status == "running" and run.lease_owner == "someone-else" and run.epoch == 1
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", flat=True)) == [1]
    assert epoch_of(run.last_checkpoint) == 1 and not Evaluation.objects.filter(run=run).exists()


def interrupted_after_epoch_2(world, experiment, monkeypatch) -> Run:
    """A 3-epoch run whose worker died once epoch 2 was recorded, given back to the queue as the reaper would."""
    run = run_start(experiment=experiment, user=world.editor, overrides={"epochs": 3})
    record = training.Tracker.on_checkpoint

    def die_after_epoch_2(self, metrics, **files):
        record(self, metrics, **files)
        if metrics["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.Tracker, "on_checkpoint", die_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_train(run_id=run.pk, worker="w1@test")
    monkeypatch.undo()
    Run.objects.filter(pk=run.pk).update(status="queued", lease_owner="")
    return fresh(run)


def test_a_new_claim_resumes_from_what_the_row_names_in_a_folder_of_its_own(world, experiment, monkeypatch):
    first = interrupted_after_epoch_2(world, experiment, monkeypatch)
    assert first.epoch == 2 and first.last_checkpoint.startswith(f"{first.checkpoint_dir}/claim-1/")
    assert run_train(run_id=first.pk, worker="w2@test") == "completed"
    run = fresh(first)
    assert run.fence == 2 and run.last_checkpoint.startswith(f"{run.checkpoint_dir}/claim-2/")
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", flat=True)) == [1, 2, 3]
    assert epoch_of(run.last_checkpoint) == 3 and epoch_of(run.best_checkpoint) == run.best_epoch


def test_a_best_checkpoint_behind_its_record_makes_its_own_epoch_the_best(world, experiment, monkeypatch):
    import torch

    run = interrupted_after_epoch_2(world, experiment, monkeypatch)
    # The row says its best weights are epoch 2's, but the file it names holds epoch 1's (a crash between
    # two writes, before they were one): the resumed run takes the weights at hand for the best.
    behind = f"{run.checkpoint_dir}/claim-1/best-behind.pt"
    state = load_checkpoint(storage.absolute(run.last_checkpoint))
    torch.save({**state, "epoch": 1}, storage.absolute(behind))
    Run.objects.filter(pk=run.pk).update(best_epoch=2, best_checkpoint=behind)
    assert run_train(run_id=run.pk, worker="w2@test") == "completed"
    run = fresh(run)
    assert epoch_of(run.best_checkpoint) == run.best_epoch


class TestCancelAlwaysEnds:
    """Every path that can make a run `queued`, with a cancel landing just before it and just after."""

    def running(self, run, lease="w@host/1/x"):
        Run.objects.filter(pk=run.pk).update(status="running", lease_owner=lease, heartbeat_at=timezone.now())
        return lease

    def test_cancel_then_the_shutdown_gives_the_run_back(self, world, experiment):
        run = run_start(experiment=experiment, user=world.editor)
        lease = self.running(run)
        run_cancel(run=run)
        assert run_requeue(run_id=run.pk, lease=lease, last_checkpoint="runs/x/claim-1/last-e1-b3.pt") is False
        assert fresh(run).status == "cancelled" and fresh(run).last_checkpoint.endswith("last-e1-b3.pt")

    def test_the_shutdown_gives_the_run_back_then_cancel(self, world, experiment):
        run = run_start(experiment=experiment, user=world.editor)
        lease = self.running(run)
        assert run_requeue(run_id=run.pk, lease=lease, last_checkpoint="runs/x/claim-1/last-e1-b3.pt") is True
        run_cancel(run=run)
        assert fresh(run).status == "cancelled"

    def test_cancel_then_the_reaper_finds_the_worker_dead(self, world, experiment, settings):
        run = run_start(experiment=experiment, user=world.editor)
        self.running(run)
        run_cancel(run=run)
        # Dead for a few beats, far less than DLSTUDIO_STALE_AFTER: cancelled at this pass, not re-queued.
        Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(seconds=20))
        assert settings.STALE_AFTER > 20
        assert runs_reap()["cancelled"] == 1 and fresh(run).status == "cancelled"

    def test_the_reaper_re_queues_then_cancel(self, world, experiment):
        run = run_start(experiment=experiment, user=world.editor)
        self.running(run)
        Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(seconds=600))
        assert runs_reap()["requeued"] == 1
        run_cancel(run=run)
        assert fresh(run).status == "cancelled"

    def test_a_queued_run_carrying_the_flag_ends_at_the_next_pass(self, world, experiment):
        run = run_start(experiment=experiment, user=world.editor)
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)  # however it came to be so
        assert runs_reap()["cancelled"] == 1 and fresh(run).status == "cancelled"

    def test_a_cancel_during_the_final_evaluation_ends_the_run_cancelled(self, world, experiment, monkeypatch):
        from workers.engine.train import loop

        run = run_start(experiment=experiment, user=world.editor)
        predict_split = loop.predict_split

        def cancelled_meanwhile(**kwargs):
            run_cancel(run=run)
            return predict_split(**kwargs)

        monkeypatch.setattr(loop, "predict_split", cancelled_meanwhile)
        assert run_train(run_id=run.pk, worker="w@test") == "cancelled"
        assert fresh(run).status == "cancelled" and not Evaluation.objects.filter(run=run).exists()


class TestSweep:
    def test_claims_that_lost_their_run_go_and_named_files_stay(self, world, finished_run):
        run = fresh(finished_run)
        kept = storage.absolute(run.best_checkpoint).parent  # claim-1, whose files the row names
        Run.objects.filter(pk=run.pk).update(fence=3)  # two claims since then lost the run
        lost = storage.absolute(f"{run.checkpoint_dir}/claim-2")
        lost.mkdir()
        (lost / "last-e5.pt").write_bytes(b"a stale worker's")
        (kept / "last-e1.pt").write_bytes(b"left by a killed claim")
        newer = storage.absolute(f"{run.checkpoint_dir}/claim-4")  # being made as the sweep reads the row
        newer.mkdir()
        assert runs_sweep() == {"claims": 1, "files": 1, "runs": 0, "temporaries": 0}
        assert not lost.exists() and not (kept / "last-e1.pt").exists() and newer.is_dir()
        assert storage.absolute(run.best_checkpoint).is_file() and storage.absolute(run.last_checkpoint).is_file()

    def test_the_claim_of_a_running_run_stays(self, world, experiment):
        run = run_start(experiment=experiment, user=world.editor)
        Run.objects.filter(pk=run.pk).update(status="running", fence=1)
        storage.absolute(f"{run.checkpoint_dir}/claim-1").mkdir(parents=True)
        assert runs_sweep()["claims"] == 0 and storage.absolute(f"{run.checkpoint_dir}/claim-1").is_dir()

    def test_temporaries_go_once_an_hour_old_and_folders_of_runs_that_do_not_exist(self, world, finished_run):
        run = fresh(finished_run)
        folder = storage.absolute(run.best_checkpoint).parent
        old, new = folder / ".last-e3.pt.abc.tmp", folder / ".last-e3.pt.def.tmp"
        old.write_bytes(b"half"), new.write_bytes(b"half")
        orphan = storage.absolute("runs/999-deadbeef/claim-1")
        orphan.mkdir(parents=True)
        (orphan / "last-e1.pt").write_bytes(b"x")
        an_hour_ago = time.time() - HOUR - 60
        for path in (old, orphan / "last-e1.pt", orphan, orphan.parent):
            os.utime(path, (an_hour_ago, an_hour_ago))
        assert runs_sweep() == {"claims": 0, "files": 0, "runs": 1, "temporaries": 1}
        assert new.exists() and not old.exists() and not orphan.parent.exists()
