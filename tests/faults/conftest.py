import pytest

from apps.experiments.services import experiment_create
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.support.services import wait_until
from tests.support.stack import Stack, point_celery_at


@pytest.fixture
def stack(transactional_db, worker_env, redis_server, tmp_path):
    """A broker, workers and beat of the test's own (started by the test, stopped here).

    The session's beat is paused meanwhile: its reaper reads the same database and would send this
    test's runs to the session's broker, where the session's workers would train them.
    """
    from tests.conftest import Workers

    session = Workers.session
    if session is not None:
        session.beat.stop()
    own = Stack(env=worker_env, directory=tmp_path / "stack")
    try:
        yield own
    finally:
        own.stop()
        point_celery_at(redis_server.url)
        if session is not None:
            session.beat.start()


def start(world, dataset, config, *, name="exp") -> Run:
    experiment = experiment_create(team=world.team, user=world.editor, name=name, dataset=dataset,
                                   config=config)
    return run_start(experiment=experiment, user=world.editor)


def fresh(run) -> Run:
    return Run.objects.get(pk=run.pk)


def wait_for(run, predicate, *, timeout, message):
    return wait_until(lambda: (lambda r: r if predicate(r) else None)(fresh(run)), timeout=timeout, interval=0.05,
                      message=message)
