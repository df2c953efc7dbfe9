"""A run's checkpoints count in its team's storage quota; a run whose checkpoints would pass the quota
fails with a sentence, and a team at its quota starts none."""
import pytest
from django.core.exceptions import ValidationError

from apps.datasets.models import Dataset
from apps.runs.models import Run
from apps.runs.services import run_start
from apps.runs.training import run_train
from apps.teams.selectors import team_usage
from dlstudio import storage

pytestmark = pytest.mark.django_db


def test_usage_counts_the_checkpoints_a_run_names(world, experiment):
    before = team_usage(world.team)
    run = run_start(experiment=experiment, user=world.editor)
    run_train(run_id=run.pk, worker="w1@test")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    named = {run.last_checkpoint, run.best_checkpoint} - {""}
    assert run.checkpoint_bytes == sum(storage.absolute(name).stat().st_size for name in named) > 0
    usage = team_usage(world.team)
    assert usage.checkpoints == before.checkpoints + run.checkpoint_bytes
    assert usage.total == before.total + run.checkpoint_bytes


def test_a_run_whose_checkpoints_would_pass_the_quota_fails_with_the_sentence(world, experiment, settings):
    settings.TEAM_QUOTA_GB = 1
    Dataset.objects.filter(pk=experiment.dataset_id).update(bytes=999_990_000)  # 10 KB left
    run = run_start(experiment=experiment, user=world.editor)
    run_train(run_id=run.pk, worker="w1@test")
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith("This run's checkpoints would take about ")
    assert "; the team uses 1.0 GB of its 1.0 GB storage quota (DLSTUDIO_TEAM_QUOTA_GB); " in run.error
    assert run.epoch == 0 and run.checkpoint_bytes == 0 and not run.last_checkpoint
    folder = storage.absolute(run.checkpoint_dir)
    assert not folder.exists() or not any(folder.rglob("*.pt"))  # the files it could not keep are gone


def test_a_team_at_its_quota_starts_no_run(world, experiment, settings):
    settings.TEAM_QUOTA_GB = 1
    Dataset.objects.filter(pk=experiment.dataset_id).update(bytes=10**9)
    with pytest.raises(ValidationError) as refused:
        run_start(experiment=experiment, user=world.editor)
    assert refused.value.code == "storage"
    assert refused.value.messages == [
        "This run could not save a checkpoint: the team uses 1.0 GB of its 1.0 GB storage quota "
        "(DLSTUDIO_TEAM_QUOTA_GB); delete datasets, runs or weights files first, or ask an administrator to "
        "raise the quota."]
    assert not Run.objects.filter(experiment=experiment).exists()
