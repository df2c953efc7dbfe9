import signal
import sqlite3

import pytest
from django.db import DatabaseError, connection, transaction

from apps.experiments.services import experiment_create
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.support.services import wait_until
from tests.support.stack import own_stack


@pytest.fixture
def stack(transactional_db, worker_env, redis_server, tmp_path):
    """A broker, workers and beat of the test's own (started by the test, stopped here)."""
    with own_stack(env=worker_env, directory=tmp_path / "stack", session_redis_url=redis_server.url) as own:
        yield own


def start(world, dataset, config, *, name="exp") -> Run:
    experiment = experiment_create(team=world.team, user=world.editor, name=name, dataset=dataset,
                                   config=config)
    return run_start(experiment=experiment, user=world.editor)


def fresh(run) -> Run:
    return Run.objects.get(pk=run.pk)


def wait_for(run, predicate, *, timeout, message):
    return wait_until(lambda: (lambda r: r if predicate(r) else None)(fresh(run)), timeout=timeout, interval=0.05,
                      message=message)


def writable(run) -> bool:
    """Whether no transaction holds `run`'s row (PostgreSQL), or the database's write lock (SQLite), now."""
    if connection.vendor == "sqlite":
        probe = sqlite3.connect(connection.settings_dict["NAME"], timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            probe.close()
    try:
        with transaction.atomic():
            list(Run.objects.select_for_update(nowait=True).filter(pk=run.pk).values_list("pk"))
        return True
    except DatabaseError:
        return False


def stop_between_writes(worker, run) -> None:
    """SIGSTOP `worker` at a moment it holds no lock: between two of its writes, where a stop mostly lands.

    A worker stopped inside a write is another case with a test of its own (test_fencing.py): on SQLite
    it holds every writer up for as long as it stays stopped.
    """
    def stop_once():
        worker.signal(signal.SIGSTOP)
        wait_until(worker.stopped, timeout=10, interval=0.01, message=f"{worker.name} to stop")
        if writable(run):
            return True
        worker.signal(signal.SIGCONT)
        return False

    wait_until(stop_once, timeout=60, interval=0.01, message=f"{worker.name} to stop between two writes")
