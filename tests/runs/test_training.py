"""The run lifecycle in-process: the same job the `runs.train` task runs, without a broker."""
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.experiments.services import experiment_create
from apps.runs.models import EpochMetric, Evaluation, Run
from apps.runs.services import run_cancel, run_start, runs_reap
from apps.runs.training import run_train
from dlstudio import storage
from workers.engine import load_checkpoint
from tests.support.factories import QUICK

pytestmark = pytest.mark.django_db


def test_a_run_trains_to_succeeded_with_metrics_evaluation_and_checkpoints(world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    assert run.status == "queued" and run.epochs == 2 and run.arch == "smallcnn"
    assert run_train(run_id=run.pk, worker="w1@test") == "completed"
    run.refresh_from_db()
    assert run.status == "succeeded" and run.progress == 1.0 and run.lease_owner == ""
    assert run.epoch == 2 and run.best_epoch in (1, 2) and 0 <= run.best_val_acc <= 1
    assert run.test_acc is not None and run.device == "cpu" and run.worker == "w1@test"
    assert run.torch_version and run.code_version and run.started_at and run.finished_at
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", flat=True)) == [1, 2]
    evaluation = Evaluation.objects.get(run=run)
    assert evaluation.split == "test" and evaluation.classes == ["dark", "light"]
    assert sum(map(sum, evaluation.confusion)) == 12
    assert load_checkpoint(storage.absolute(run.best_checkpoint))["epoch"] == run.best_epoch
    assert evaluation.checkpoint == run.best_checkpoint
    best = storage.absolute(run.best_checkpoint).read_bytes()
    assert evaluation.checkpoint_sha256 == hashlib.sha256(best).hexdigest()


def test_a_duplicate_delivery_is_a_no_op(world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    run_train(run_id=run.pk, worker="w1@test")
    assert run_train(run_id=run.pk, worker="w2@test") == "not claimed"
    run.refresh_from_db()
    assert run.worker == "w1@test" and EpochMetric.objects.filter(run=run).count() == 2


def test_cancelling_a_queued_run_is_immediate_and_it_never_trains(world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    assert run_cancel(run=run).status == "cancelled"
    assert run_train(run_id=run.pk, worker="w1@test") == "not claimed"
    assert not EpochMetric.objects.filter(run=run).exists()


def test_overrides_are_validated_and_name_the_field(world, experiment):
    with pytest.raises(ValidationError) as caught:
        run_start(experiment=experiment, user=world.editor, overrides={"lr": -1})
    assert caught.value.code == "config.lr"
    run = run_start(experiment=experiment, user=world.editor, overrides={"augment": {"hflip": True}})
    assert run.config["augment"]["hflip"] is True and run.config["epochs"] == 2


def test_a_nan_loss_fails_the_run_with_the_sentence(world, dataset):
    experiment = experiment_create(team=world.team, user=world.editor, name="hot", dataset=dataset,
                                   config={**QUICK, "lr": 1e30, "optimizer": "sgd", "batch_norm": False})
    run = run_start(experiment=experiment, user=world.editor)
    run_train(run_id=run.pk, worker="w1@test")
    run.refresh_from_db()
    assert run.status == "failed" and "loss became NaN at epoch 1; lower the learning rate" in run.error


def test_a_deleted_pack_fails_with_a_readable_sentence(world, experiment):
    run = run_start(experiment=experiment, user=world.editor)
    storage.remove(experiment.dataset.pack_path)
    run_train(run_id=run.pk, worker="w1@test")
    run.refresh_from_db()
    assert run.status == "failed" and run.error.endswith(".") and run.traceback


def test_starting_from_a_run_records_the_parent(world, dataset, experiment):
    parent = run_start(experiment=experiment, user=world.editor)
    run_train(run_id=parent.pk, worker="w1@test")
    child_experiment = experiment_create(team=world.team, user=world.editor, name="child", dataset=dataset,
                                         config={**QUICK, "pretrained": {"run": parent.pk}})
    child = run_start(experiment=child_experiment, user=world.editor)
    assert child.parent == parent
    assert run_train(run_id=child.pk, worker="w1@test") == "completed"


def test_starting_from_a_foreign_or_unfinished_run_is_refused(world, dataset, experiment):
    unfinished = run_start(experiment=experiment, user=world.editor)
    with pytest.raises(ValidationError, match="has not succeeded"):
        experiment_create(team=world.team, user=world.editor, name="x", dataset=dataset,
                          config={"pretrained": {"run": unfinished.pk}})
    with pytest.raises(ValidationError, match="no run"):
        experiment_create(team=world.other_team, user=world.outsider, name="x", dataset=dataset,
                          config={"pretrained": {"run": unfinished.pk}})


class TestReaper:
    def stale(self, run, *, attempt=1, cancel=False, settings=None):
        Run.objects.filter(pk=run.pk).update(status="running", lease_owner="gone@host/1/x", attempt=attempt,
                                             cancel_requested=cancel,
                                             heartbeat_at=timezone.now() - timezone.timedelta(seconds=600))

    def test_a_silent_run_goes_back_to_the_queue_with_the_next_attempt(self, world, experiment):
        run = run_start(experiment=experiment, user=world.editor)
        self.stale(run)
        assert runs_reap() == {"requeued": 1, "failed": 0, "cancelled": 0}
        run.refresh_from_db()
        assert run.status == "queued" and run.attempt == 2 and run.lease_owner == ""

    def test_after_three_attempts_it_fails_with_the_reason(self, world, experiment):
        run = run_start(experiment=experiment, user=world.editor)
        self.stale(run, attempt=3)
        runs_reap()
        run.refresh_from_db()
        assert run.status == "failed" and "lost its worker 3 times" in run.error

    def test_a_lost_run_that_was_being_cancelled_ends_cancelled(self, world, experiment):
        run = run_start(experiment=experiment, user=world.editor)
        self.stale(run, cancel=True)
        runs_reap()
        run.refresh_from_db()
        assert run.status == "cancelled"

    def test_a_fresh_heartbeat_is_left_alone(self, world, experiment):
        run = run_start(experiment=experiment, user=world.editor)
        Run.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now())
        assert runs_reap()["requeued"] == 0
