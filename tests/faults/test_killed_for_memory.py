"""A run whose worker is killed twice (SIGKILL, what the kernel's out-of-memory killer sends) ends `failed`
with a sentence about memory, and no third worker is given it."""
import os
import signal
from pathlib import Path

import pytest

from apps.runs.models import Run
from tests.support.services import wait_until

from .conftest import start, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CONFIG = {"epochs": 1000, "batch_size": 8, "hidden_units": [16], "seed": 1}  # trains until killed


def witnessed(worker) -> bool:
    """Whether the worker has started the witness of its job (its one child process)."""
    children = Path(f"/proc/{worker.proc.pid}/task/{worker.proc.pid}/children")
    return children.exists() and bool(children.read_text().split())


def test_a_run_whose_worker_is_killed_twice_fails_for_memory_without_a_third_attempt(world, dataset, stack):
    stack.start_reaping()
    trainer = stack.start_trainer()
    run = start(world, dataset, CONFIG)
    for attempt in (1, 2):
        wait_for(run, lambda r, attempt=attempt: r.status == "running" and r.attempt == attempt, timeout=60,
                 message=lambda attempt=attempt: f"attempt {attempt} to run\n{stack.logs()}")
        wait_until(lambda trainer=trainer: witnessed(trainer), timeout=10, interval=0.05,
                   message="the witness to start")
        os.kill(trainer.proc.pid, signal.SIGKILL)  # the process alone, as the out-of-memory killer does
        trainer.proc.wait(timeout=10)
        # A supervisor (make run, systemd) starts a fresh worker whenever one dies.
        trainer = stack.start_trainer(name=f"train{attempt + 1}", wait=False)

    run = wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=60,
                   message=lambda: f"the run to be given up\n{stack.logs()}")
    assert run.status == "failed" and run.attempt == 2 and run.killed_attempts == 2 and run.lease_owner == ""
    assert run.error.startswith("Its worker was killed twice while training it, most likely for lack of memory "
                                "(this config needs about 0.")
    assert run.error.endswith(" GB); lower batch_size, hidden_units or the image size.")
    # No third attempt: two claims only, and no message waits in the train queue for a third worker.
    assert run.fence == 2 and stack.redis.client().llen("train") == 0
    assert trainer.proc.poll() is None  # the third worker lives
