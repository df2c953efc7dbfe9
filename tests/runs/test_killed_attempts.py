"""The reaper tells a worker that was killed (its witness noted it vanished mid-job) from one that went
silent: two kills fail the run with the sentence about memory; a silent worker keeps the three attempts."""
import json

import pytest
from django.utils import timezone

from apps.runs.models import Run
from apps.runs.services import VANISHED_NOTE, run_start, runs_reap
from dlstudio import storage

pytestmark = pytest.mark.django_db


def stale(run, *, attempt=1, killed=0, fence=1, note=False):
    Run.objects.filter(pk=run.pk).update(status="running", lease_owner="gone@host/1/x", attempt=attempt, fence=fence,
                                         killed_attempts=killed,
                                         heartbeat_at=timezone.now() - timezone.timedelta(seconds=600))
    if note:
        path = storage.absolute(f"{run.checkpoint_dir}/claim-{fence}/{VANISHED_NOTE}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"pid": 1, "at": 0, "last_rss": 10**9, "peak_rss": 10**9}))


def test_a_first_kill_is_counted_and_the_run_goes_back_to_the_queue(world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    stale(run, note=True)
    assert runs_reap()["requeued"] == 1
    run.refresh_from_db()
    assert run.status == "queued" and run.attempt == 2 and run.killed_attempts == 1


def test_a_second_kill_fails_the_run_with_its_memory_estimate(world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    stale(run, attempt=2, killed=1, fence=2, note=True)
    assert runs_reap() == {"requeued": 0, "failed": 1, "cancelled": 0}
    run.refresh_from_db()
    assert run.status == "failed" and run.killed_attempts == 2
    assert run.error.startswith("Its worker was killed twice while training it, most likely for lack of memory "
                                "(this config needs about ")
    assert run.error.endswith(" GB); lower batch_size, hidden_units or the image size.")


def test_a_note_of_an_earlier_claim_does_not_count_again(world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    stale(run, killed=1, fence=1, note=True)
    Run.objects.filter(pk=run.pk).update(fence=2, attempt=2)  # the next claim went silent, unkilled
    assert runs_reap()["requeued"] == 1
    run.refresh_from_db()
    assert run.status == "queued" and run.killed_attempts == 1


def test_a_silent_worker_is_not_counted_as_killed(world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    stale(run, attempt=2, killed=1, fence=2)
    assert runs_reap()["requeued"] == 1
    run.refresh_from_db()
    assert run.status == "queued" and run.attempt == 3 and run.killed_attempts == 1


def test_with_an_object_store_the_reaper_on_another_machine_reads_the_note_the_witness_put_there(
        world, experiment, settings, tmp_path):
    settings.STORAGE_URL = f"file://{tmp_path / 'store'}"
    settings.DATA_DIR = tmp_path / "worker-machine"
    run = run_start(experiment=experiment, user=world.editor)
    stale(run, note=True)
    storage.put(f"{run.checkpoint_dir}/claim-1/{VANISHED_NOTE}", keep=True)
    settings.DATA_DIR = tmp_path / "web-machine"  # where the reaper runs: none of the worker's files
    assert runs_reap()["requeued"] == 1
    run.refresh_from_db()
    assert run.status == "queued" and run.killed_attempts == 1


def test_with_an_object_store_a_note_that_never_reached_it_counts_a_lost_worker(world, experiment, settings, tmp_path):
    settings.STORAGE_URL = f"file://{tmp_path / 'store'}"
    settings.DATA_DIR = tmp_path / "web-machine"
    run = run_start(experiment=experiment, user=world.editor)
    stale(run)
    assert runs_reap()["requeued"] == 1
    run.refresh_from_db()
    assert run.status == "queued" and run.attempt == 2 and run.killed_attempts == 0
