"""A test's own broker, workers and beat, so a fault (Redis restarted, workers killed) breaks nothing
the rest of the session relies on.

The database is the session's (the worker processes share the test database file); everything
that talks to Redis — the workers, beat, and the Celery app and settings of this test process — is
pointed at the stack's own redis-server for as long as the stack lives.
"""
from __future__ import annotations

import os
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import redis

from .services import Beat, CeleryWorker, RedisServer, wait_until


class RestartableRedis(RedisServer):
    """A redis-server that can be restarted on the same port, with its data kept (AOF) or lost."""

    def __init__(self, directory: Path):
        super().__init__(directory)
        self.keep_data = False

    def start(self) -> "RestartableRedis":
        self.directory.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.keep_data else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence,
             "--dir", str(self.directory), "--appenddirname", "aof"],
            stdout=open(self.directory / "redis.log", "ab"), stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited: {(self.directory / 'redis.log').read_text()[-2000:]}")
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_until(answers, timeout=20, message="redis-server to answer")
        return self

    def kill(self) -> None:
        """Gone at once, as a crashed or restarted host would be (no final save)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self, *, keep_data: bool) -> None:
        """Stop and start again on the same port: with its data (an AOF written on every command)
        or empty, as a Redis without persistence, or a new container, comes back."""
        if keep_data:
            self.stop()
        else:
            self.kill()
            for path in self.directory.glob("aof/*"):
                path.unlink()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


def point_celery_at(url: str) -> None:
    """The Celery app and settings of this process talk to `url` from now on (pools dropped)."""
    from django.conf import settings

    from dlstudio.celery import app, configure

    from kombu import pools

    pools.reset()  # closes every pooled connection and forgets the pools, so new ones use the new URL
    app._pool = None
    app.amqp._producer_pool = None
    # The result backend is made once, for the URL of its day, and every send from this process
    # subscribes to it; left alone, a second stack's sends would go looking for the first stack's server.
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)
    configure(app, url)
    os.environ["REDIS_URL"] = settings.REDIS_URL = url


@contextmanager
def own_stack(*, env: dict, directory: Path, session_redis_url: str, stale_after: str = "6") -> Iterator["Stack"]:
    """A Stack for one test, stopped at the end with this process pointed back at the session's Redis.

    The session's beat is paused meanwhile: its reapers (and `sweeps.advance_all`) read the same database
    and would send the test's runs to the session's broker, where the session's workers would train them.
    """
    from tests.conftest import Workers

    session = Workers.session
    if session is not None:
        session.beat.stop()
    own = Stack(env=env, directory=directory, stale_after=stale_after)
    try:
        yield own
    finally:
        own.stop()
        point_celery_at(session_redis_url)
        if session is not None:
            session.beat.start()


class Stack:
    """redis-server + a prefork worker for `default`/`ingest` (which runs the reaper) + training
    workers (solo pool) + celery beat, all of the test's own."""

    def __init__(self, *, env: dict, directory: Path, stale_after: str = "6"):
        self.directory = directory
        self.redis = RestartableRedis(directory / "redis")
        self.env = {**env, "REDIS_URL": self.redis.url, "DLSTUDIO_STALE_AFTER": stale_after}
        self.log_dir = directory / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.general: CeleryWorker | None = None
        self.beat: Beat | None = None
        self.trainers: list[CeleryWorker] = []

    @property
    def app(self):
        from dlstudio.celery import app

        return app

    def start_redis(self, *, keep_data: bool = False) -> "Stack":
        self.redis.keep_data = keep_data
        self.redis.start()
        point_celery_at(self.redis.url)
        return self

    def start_general(self) -> CeleryWorker:
        self.general = CeleryWorker(env=self.env, queues="default,ingest", pool="prefork", log_dir=self.log_dir,
                                    name="general").start()
        return self.general

    def start_beat(self) -> Beat:
        self.beat = Beat(env=self.env, log_dir=self.log_dir).start()
        return self.beat

    def start_reaping(self) -> "Stack":
        """Redis, the general worker and beat: all a fault test needs besides the training workers it kills."""
        self.start_redis()
        self.start_general()
        self.start_beat()
        return self

    def start_trainer(self, *, env: dict | None = None, name: str = "train", wait: bool = True,
                      app: str = "dlstudio") -> CeleryWorker:
        worker = CeleryWorker(env={**self.env, **(env or {})}, queues="train", pool="solo", log_dir=self.log_dir,
                              name=name, app=app).start()
        self.trainers.append(worker)
        return worker.wait_ready(self.app) if wait else worker

    def wait_ready(self) -> None:
        for worker in [self.general, *self.trainers]:
            if worker is not None:
                worker.wait_ready(self.app)

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
                         for path in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        """Every worker asked to stop at once, then waited for: their warm shutdowns overlap."""
        workers = [worker for worker in [*self.trainers, self.general] if worker is not None]
        for worker in workers:
            worker.signal(signal.SIGTERM)
        for worker in workers:
            worker.wait_stopped(timeout=20)
        if self.beat is not None:
            self.beat.stop()
        self.redis.stop()
