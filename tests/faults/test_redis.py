"""Redis restarted under the workers: with its data, and empty (the queued runs' messages lost)."""
import pytest
from django.urls import reverse
from django.utils import timezone

from apps.datasets.models import Dataset
from apps.datasets.services import dataset_create
from apps.runs.models import EpochMetric, Run
from apps.runs.services import TRAIN_TASK, runs_resend_lost
from tests.support.factories import OPTIONS, QUICK, light_and_dark_zip
from tests.support.services import wait_until
from workers import broker

from .conftest import fresh, start, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

THREE_EPOCHS = {**QUICK, "epochs": 3}


def epochs_of(run) -> list[int]:
    return list(EpochMetric.objects.filter(run=run).order_by("epoch").values_list("epoch", flat=True))


def assert_trained_once(run, epochs):
    run = fresh(run)
    assert run.status == "succeeded", run.error
    assert epochs_of(run) == list(range(1, epochs + 1))  # every epoch, each once


@pytest.mark.parametrize("keep_data", [True, False], ids=["with-its-data", "empty"])
def test_redis_restarted_during_a_run(world, dataset, stack, keep_data):
    stack.start_redis(keep_data=keep_data)
    stack.start_general()
    stack.start_beat()
    trainer = stack.start_trainer()
    stack.wait_ready()
    epochs = 150
    run = start(world, dataset, {**THREE_EPOCHS, "epochs": epochs})
    wait_for(run, lambda r: r.status == "running" and r.epoch >= 2, timeout=120, message="a few epochs")

    stack.redis.restart(keep_data=keep_data)
    assert fresh(run).status == "running" and fresh(run).epoch < epochs  # the restart happened mid-run

    # Queued after the restart: the worker must have reconnected to get it.
    after = start(world, dataset, THREE_EPOCHS, name="after the restart")
    run = wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=180, message="the run to end")
    after = wait_for(after, lambda r: r.status in Run.FINISHED_STATUSES, timeout=120,
                     message=lambda: "the run queued after the restart to end\n" + stack.logs())
    assert_trained_once(run, epochs)
    assert_trained_once(after, THREE_EPOCHS["epochs"])
    assert fresh(run).attempt == 1 and fresh(after).attempt == 1
    assert trainer.proc.poll() is None and after.worker == trainer.name  # the same worker, reconnected
    nothing_left_to_train_twice()


def test_redis_restarted_empty_loses_queued_runs_and_the_reaper_sends_them_again(world, dataset, stack, api_as,
                                                                                 tmp_path):
    """No training worker yet, so the runs wait in the `train` queue; then Redis comes back empty."""
    stack.start_redis(keep_data=False)
    stack.start_general()
    stack.start_beat()
    stack.wait_ready()
    first = start(world, dataset, THREE_EPOCHS, name="first")
    second = start(world, dataset, THREE_EPOCHS, name="second")
    assert set(broker.messages("train", TRAIN_TASK)) == {first.pk, second.pk}

    # A run waiting its turn is left alone, however long it waits: its message is there.
    later = timezone.now() + timezone.timedelta(seconds=3600)
    assert runs_resend_lost(now=later) == 0
    assert stack.redis.client().llen("train") == 2

    stack.redis.restart(keep_data=False)
    assert broker.messages("train", TRAIN_TASK) == {}

    # Started while Redis is down: the answer is still 201, the run is queued in the database.
    stack.redis.kill()
    api = api_as(world.editor)
    answer = api.post(reverse("api_run_start", args=[first.experiment_id]), {}, format="json")
    assert answer.status_code == 201, answer.content
    third = Run.objects.get(pk=answer.json()["id"])
    assert third.status == "queued"
    finding = api.post(reverse("api_lr_finder", args=[first.experiment_id]), {}, format="json")
    assert finding.status_code == 201 and finding.json()["status"] == "queued", finding.content
    # An upload while Redis is down: kept, waiting for ingest.
    upload = dataset_create(team=world.team, user=world.editor, name="uploaded while Redis was down",
                            source_path=light_and_dark_zip(tmp_path / "later.zip"), options=OPTIONS)
    stack.redis.start()

    trainer = stack.start_trainer()
    for run in (first, second, third):
        wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=120,
                 message=f"run {run.pk} to be sent again and trained\n" + stack.logs())
        assert_trained_once(run, THREE_EPOCHS["epochs"])
        assert fresh(run).attempt == 1 and fresh(run).worker == trainer.name  # not a failed attempt
    assert "sending it again" in stack.general.log()
    upload = wait_until(lambda: Dataset.objects.filter(pk=upload.pk, status="ready").first(), timeout=60,
                        message=lambda: "the upload to be sent again and ingested\n" + stack.logs())
    assert upload.num_images == 60
    nothing_left_to_train_twice()


def nothing_left_to_train_twice():
    """No message for a finished run waits in the queue or sits unacknowledged (a worker acknowledges
    a message just after the run's row says it ended: wait for that)."""
    wait_until(lambda: broker.messages("train", TRAIN_TASK) == {}, timeout=10,
               message="the train queue to be empty and every message acknowledged")
