import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from tests.support.services import CeleryWorker, RedisServer, database_url

@pytest.fixture(scope="session", autouse=True)
def redis_server(tmp_path_factory):
    """A private redis-server on a free port; settings and the Celery app point at it."""
    from dlstudio.celery import app, configure

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    os.environ["REDIS_URL"] = settings.REDIS_URL = server.url
    configure(app, server.url)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The real hasher costs ~0.3 s per password on purpose; tests make many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def worker_env(django_db_setup, django_db_blocker, redis_server):
    """The environment a worker process needs to share this test run's database and Redis."""
    from django.db import connection

    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {**env, "REDIS_URL": redis_server.url, "DATABASE_URL": url,
            "DLSTUDIO_DATA_DIR": str(settings.DATA_DIR), "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def celery_workers(worker_env, redis_server, tmp_path_factory):
    """Real Celery worker processes, as `make run` starts them: a prefork worker for `default` and
    `ingest`, and a solo-pool worker for `train`. Shared by the whole session."""
    import redis

    from dlstudio.celery import app

    # Messages queued by earlier tests whose transactions never committed must not reach them.
    redis.Redis.from_url(redis_server.url).flushdb()
    log_dir = Path(tmp_path_factory.mktemp("workers"))
    general = CeleryWorker(env=worker_env, queues="default,ingest", pool="prefork", log_dir=log_dir,
                           name="general").start()
    train = CeleryWorker(env=worker_env, queues="train", pool="solo", log_dir=log_dir, name="train").start()
    try:
        general.wait_ready(app)
        train.wait_ready(app)
        yield SimpleNamespace(general=general, train=train)
    finally:
        general.stop()
        train.stop()


@pytest.fixture
def make_user(django_user_model):
    def make(username, password="a-long-test-password"):
        return django_user_model.objects.create_user(username=username, password=password)
    return make


@pytest.fixture
def world(make_user):
    """A team with an owner, an editor and a viewer, and an outsider with a team of their own."""
    from apps.teams.models import Membership
    from apps.teams.services import team_create

    owner, editor, viewer, outsider = (make_user(n) for n in ("olivia", "eddie", "vera", "oscar"))
    team = team_create(name="Vision Lab", owner=owner)
    Membership.objects.create(team=team, user=editor, role=Membership.Role.EDITOR)
    Membership.objects.create(team=team, user=viewer, role=Membership.Role.VIEWER)
    other = team_create(name="Other Lab", owner=outsider)
    return SimpleNamespace(team=team, other_team=other, owner=owner, editor=editor, viewer=viewer,
                           outsider=outsider, password="a-long-test-password")
