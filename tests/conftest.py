import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from tests.support import factories
from tests.support.services import Beat, CeleryWorker, RedisServer, database_url

pytest_plugins = ["tests.support.browser"]  # browser, page, sign_in: for tests/browser and tests/security

# What makes a test an integration or a browser test: the real processes it asks for. `make test-fast`
# runs the others, the unit tests, which need no Redis, Celery or Chromium.
INTEGRATION_FIXTURES = {"redis_server", "celery_workers", "worker_env", "stack"}
BROWSER_FIXTURES = {"browser", "page", "live_server"}
# Until a test asks for Redis, nothing talks to one: a message a unit test sends fails at once on this
# closed port (rather than reaching a developer's own Redis), and the throttles count in memory.
NOWHERE = "redis://127.0.0.1:9/0"


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        elif fixtures & INTEGRATION_FIXTURES:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def no_redis_yet():
    from django.test import override_settings

    from dlstudio.celery import app, configure

    os.environ["REDIS_URL"] = settings.REDIS_URL = NOWHERE
    configure(app, NOWHERE)
    in_memory = override_settings(CACHES={**settings.CACHES, "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}})
    in_memory.enable()
    yield
    in_memory.disable()


@pytest.fixture(scope="session")
def redis_server(no_redis_yet, tmp_path_factory):
    """A private redis-server on a free port; settings, the Celery app and the throttles' cache point at it
    from then on."""
    from dlstudio.celery import app, configure

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    os.environ["REDIS_URL"] = settings.REDIS_URL = server.url
    configure(app, server.url)
    # The throttles' counters on the same private server, in the database settings derive for it.
    from django.test import override_settings

    from dlstudio.settings import _cache_url

    caches = override_settings(CACHES={**settings.CACHES, "default": {
        **settings.CACHES["default"], "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _cache_url(server.url)}})
    caches.enable()
    yield server
    caches.disable()
    server.stop()


@pytest.fixture(autouse=True)
def fresh_throttles():
    """Every test starts with no request or failed sign-in counted (the cache holds only those)."""
    from django.core.cache import caches

    for alias in ("default", "local"):
        try:
            caches[alias].clear()
        except Exception:  # a test that stopped Redis on purpose
            pass


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


# Short, so the reaper's recovery of a killed worker's run is quick to see; heartbeats follow it.
TEST_STALE_AFTER = "6"


@pytest.fixture(scope="session")
def celery_workers(worker_env, redis_server, tmp_path_factory):
    """Real Celery processes, as `make run` starts them: a prefork worker for `default` and `ingest`,
    a solo-pool worker for `train`, and celery beat (the reaper). Shared by the whole session."""
    import redis

    from dlstudio.celery import app

    # Messages queued by earlier tests whose transactions never committed must not reach them.
    redis.Redis.from_url(redis_server.url).flushdb()
    env = {**worker_env, "DLSTUDIO_STALE_AFTER": TEST_STALE_AFTER}
    workers = Workers(env=env, log_dir=Path(tmp_path_factory.mktemp("workers")), app=app)
    try:
        workers.start()
        Workers.session = workers
        yield workers
    finally:
        Workers.session = None
        workers.stop()


class Workers:
    # The session's workers once started: tests with a stack of their own (tests/faults) pause its
    # beat, whose reaper shares the database and would hand their runs to the session's broker.
    session: "Workers | None" = None

    def __init__(self, *, env, log_dir, app):
        self.env, self.log_dir, self.app = env, log_dir, app
        self.general = CeleryWorker(env=env, queues="default,ingest", pool="prefork", log_dir=log_dir,
                                    name="general")
        self.train = CeleryWorker(env=env, queues="train", pool="solo", log_dir=log_dir, name="train")
        self.beat = Beat(env=env, log_dir=log_dir)
        self.extra: list[CeleryWorker] = []

    def start(self):
        self.general.start()
        self.train.start()
        self.beat.start()
        self.general.wait_ready(self.app)
        self.train.wait_ready(self.app)

    @property
    def trainers(self) -> list[CeleryWorker]:
        """Every training worker of the session: tests that add or replace one leave them for the next, in
        whatever order pytest-xdist hands the files out."""
        return [self.train, *self.extra]

    def train_logs(self) -> str:
        return "".join(worker.log() for worker in self.trainers)

    def new_train_worker(self, name="train") -> CeleryWorker:
        """One more training worker (stopped with the others at the end of the session)."""
        worker = CeleryWorker(env=self.env, queues="train", pool="solo", log_dir=self.log_dir, name=name).start()
        self.extra.append(worker)
        return worker.wait_ready(self.app)

    def stop(self):
        for worker in [self.general, self.train, *self.extra]:
            worker.stop()
        self.beat.stop()


@pytest.fixture
def isolated_data_dir(settings, tmp_path):
    """A data dir of the test's own, so leftovers are easy to see (and to assert absent).

    Not for tests that use worker processes: those share the session's data dir with the workers.
    """
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    return settings.DATA_DIR


@pytest.fixture
def api_as():
    """An API client authenticated with a real token of `user` (None: anonymous)."""
    from rest_framework.test import APIClient

    from apps.teams.services import token_create

    def api_as(user):
        client = APIClient()
        if user is not None:
            _, key = token_create(user=user, name="tests")
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client
    return api_as


@pytest.fixture
def make_user(django_user_model):
    def make(username, password=factories.PASSWORD):
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
                           outsider=outsider, password=factories.PASSWORD)


@pytest.fixture
def dataset(world, tmp_path):
    """A ready light-and-dark dataset of the world's team."""
    return factories.ready_dataset(world.team, tmp_path / "light-dark.zip")


@pytest.fixture
def experiment(world, dataset):
    return factories.make_experiment(world.team, world.editor, dataset)


@pytest.fixture
def finished_run(world, experiment):
    """A run of `experiment`, trained in this process."""
    return factories.trained_run(experiment, world.editor)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME (torchvision's cache of weights), and any attempt to reach the network fails."""
    import urllib.request

    import torch

    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))

    def no_network(*args, **kwargs):
        pytest.fail("something tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return home
