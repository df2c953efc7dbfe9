"""Real services for the tests: a private redis-server and Celery worker processes."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_state(pid: int) -> str:
    """The one-letter state of a process (R running, S sleeping, T stopped, ...); "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message="condition"):
    """Poll `predicate` until it returns something truthy; fail loudly at the deadline.

    `message` may be a function, called only then: logs read at the deadline, not before the wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            said = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout}s waiting for {said}")
        time.sleep(interval)


class RedisServer:
    def __init__(self, directory: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=open(self.directory / "redis.log", "ab"), stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers():
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_until(answers, timeout=20, message="redis-server to answer")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database this test process uses, for worker processes."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        auth = settings_dict["USER"] + (f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}@{host}:{port}/{settings_dict['NAME']}"
    raise NotImplementedError(engine)


class CeleryWorker:
    """`celery -A dlstudio worker` as a real child process, in its own process group."""

    def __init__(self, *, env: dict, queues: str = "default,ingest,train", pool: str = "solo",
                 log_dir: Path, name: str | None = None, app: str = "dlstudio"):
        self.name = f"{name or 'test'}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self.queues, self.pool, self.env, self.app = queues, pool, env, app
        self.log_path = log_dir / f"{self.name.split('@')[0]}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "CeleryWorker":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", self.app, "worker", "-Q", self.queues,
             f"--pool={self.pool}", "--concurrency=1", "-n", self.name, "--loglevel=INFO",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, app, timeout: float = 90) -> "CeleryWorker":
        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            return app.control.ping(destination=[self.name], timeout=0.5)

        wait_until(answers, timeout=timeout, interval=0.2, message=f"worker {self.name} to answer")
        return self

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stopped(self) -> bool:
        """Whether the process is stopped (SIGSTOP) now, as the kernel sees it."""
        return self.proc is not None and process_state(self.proc.pid) == "T"

    def stop(self, timeout: float = 30) -> None:
        self.signal(signal.SIGTERM)
        self.wait_stopped(timeout)

    def wait_stopped(self, timeout: float) -> None:
        """Wait for the process to end (a warm shutdown asked for), killing it after `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


class Beat:
    """`celery -A dlstudio beat`: the scheduler that runs the reaper."""

    def __init__(self, *, env: dict, log_dir: Path):
        self.env, self.log_path = env, log_dir / "beat.log"
        self.schedule = log_dir / "celerybeat-schedule"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Beat":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dlstudio", "beat", "--loglevel=INFO", "-s", str(self.schedule)],
            cwd=ROOT, env=self.env, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
