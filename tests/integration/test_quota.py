"""The storage quota in a real training worker: a run whose checkpoints would pass it fails with the
sentence, and keeps no file."""
import pytest
from django.conf import settings

from apps.datasets.models import Dataset
from apps.experiments.services import experiment_create
from apps.runs.models import Run
from apps.runs.services import run_start
from dlstudio import storage
from tests.support.factories import QUICK
from tests.support.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_run_whose_checkpoints_would_pass_the_quota_fails_in_the_worker(world, dataset, celery_workers):
    # The workers read the quota from their own settings (the default): leave the team 10 KB of it.
    Dataset.objects.filter(pk=dataset.pk).update(bytes=settings.TEAM_QUOTA_GB * 10**9 - 10_000)
    experiment = experiment_create(team=world.team, user=world.editor, name="exp", dataset=dataset, config=QUICK)
    run = run_start(experiment=experiment, user=world.editor)
    run = wait_until(lambda: Run.objects.filter(pk=run.pk, status__in=Run.FINISHED_STATUSES).first(), timeout=120,
                     interval=0.1, message="the run to end")
    assert run.status == "failed", run.status + celery_workers.train_logs()[-3000:]
    assert run.error.startswith("This run's checkpoints would take about ")
    assert "storage quota (DLSTUDIO_TEAM_QUOTA_GB)" in run.error
    assert run.epoch == 0 and run.checkpoint_bytes == 0 and not run.last_checkpoint
    folder = storage.absolute(run.checkpoint_dir)
    # The worker removes the files no row names as the job ends, just after the row says failed.
    wait_until(lambda: not folder.exists() or not any(folder.rglob("*.pt")), timeout=30, interval=0.1,
               message="the unnamed checkpoints to be removed")
