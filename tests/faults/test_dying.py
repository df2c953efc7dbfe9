"""A run that kills its worker every time (as the out-of-memory killer would) ends `failed`, once: after
Run.MAX_KILLS workers killed, with the sentence about memory."""
import json

import pytest
from kombu import Connection

from apps.runs.models import EpochMetric, Run
from apps.runs.services import TRAIN_TASK
from tests.support.services import wait_until
from workers import broker

from .conftest import fresh, start

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DIES_AT = 2
CONFIG = {"epochs": 5, "batch_size": 8, "hidden_units": [16], "seed": 1}


def test_a_run_that_keeps_killing_its_worker_fails_after_its_attempts_without_a_redelivery_loop(
        world, dataset, stack):
    stack.start_reaping()
    dying = {"env": {"DLSTUDIO_TEST_DIE_AT_EPOCH": str(DIES_AT)}, "app": "tests.support.dying_worker"}
    trainer = stack.start_trainer(**dying)
    stack.wait_ready()
    run = start(world, dataset, CONFIG)

    # A supervisor (systemd, Kubernetes) starts a fresh worker whenever one dies.
    deaths = []

    def ended():
        nonlocal trainer
        if trainer.proc.poll() is not None:
            deaths.append(trainer.proc.returncode)
            assert len(deaths) <= Run.MAX_KILLS, f"killed {len(deaths)} times\n{stack.logs()}"
            trainer = stack.start_trainer(**dying, wait=False)
        return fresh(run).status in Run.FINISHED_STATUSES

    wait_until(ended, timeout=150, interval=0.1, message=lambda: "the run to be given up\n" + stack.logs())
    run = fresh(run)
    assert run.status == "failed" and run.attempt == Run.MAX_KILLS
    assert run.error.startswith("Its worker was killed twice while training it, most likely for lack of memory")
    assert run.killed_attempts == Run.MAX_KILLS and run.lease_owner == ""
    assert deaths == [-9] * Run.MAX_KILLS  # each attempt died of SIGKILL at epoch 2, none more
    # Every attempt resumed from epoch 1's checkpoint and died before recording epoch 2.
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", "attempt")) == [(1, 1)]

    # No redelivery loop: nothing waits in the train queue for it, and the reaper leaves it alone.
    client = stack.redis.client()
    assert client.llen("train") == 0
    rounds = reaper_rounds(stack)
    wait_until(lambda: reaper_rounds(stack) >= rounds + 2, timeout=30, message="two more rounds of the reaper")
    assert fresh(run).status == "failed" and client.llen("train") == 0

    # The killed workers' deliveries were never acknowledged: Redis hands such messages out again
    # after the visibility timeout (a week). Do that now, as kombu does it: the worker, still armed to
    # die at epoch 2, turns each one away at the claim, and lives.
    # (Counted by task: the general worker's reaper message is unacknowledged while it runs, too.)
    held = sum(1 for raw in client.hvals("unacked") if json.loads(raw)[0]["headers"]["task"] == TRAIN_TASK)
    assert held == Run.MAX_KILLS
    assert set(broker.messages("train", TRAIN_TASK)) == {run.pk}
    trainer.wait_ready(stack.app)
    with Connection(stack.redis.url, transport_options={"visibility_timeout": 0}) as conn:
        conn.default_channel.qos.restore_visible(num=100)
    wait_until(lambda: trainer.log().count("'not claimed'") == held, timeout=30,
               message=lambda: "the redelivered messages to be turned away\n" + trainer.log()[-3000:])
    assert trainer.proc.poll() is None and len(deaths) == Run.MAX_KILLS
    assert fresh(run).status == "failed" and EpochMetric.objects.filter(run=run).count() == 1
    wait_until(lambda: broker.messages("train", TRAIN_TASK) == {}, timeout=10,
               message="every message acknowledged")


def reaper_rounds(stack) -> int:
    return sum(1 for line in stack.general.log().splitlines() if "runs.reap[" in line and "succeeded" in line)
