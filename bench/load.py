"""Load (issue 7): 20 people watching a run train, over HTTP on loopback, for a bounded time.

    .venv/bin/python bench/load.py                       # 20 clients, back to back, 30 s
    .venv/bin/python bench/load.py --interval 1.5        # each client polls as the run page does
    .venv/bin/python bench/load.py --clients 5 --duration 5    # a smoke run

Everything it needs it starts itself, in a throw-away data dir with its own SQLite database: a
redis-server on a free port, one training worker (`celery -A dlstudio worker -Q train --pool=solo`,
the Procfile's `train` line) and gunicorn started as the Procfile's `web` line does (helpers shared
with bench/predict.py). A user, a team, a digits dataset ingested in-process and a run queued
through `run_start`, so the real worker really trains it while the clients read it.

Each client is a person with the run page open: a session cookie, one keep-alive connection; it
loads the run page (`GET /runs/<id>/`), then polls `GET /api/runs/<id>/metrics?after=N` like
static/js/run.js does (N follows the epochs it has seen; when new epochs arrive it also reads
`GET /api/runs/<id>`, as the page refreshes its detail), reloading the page every --page-every
polls. --interval 0 (the default) polls back to back, the hardest case; 1.5 is the page's pace.

Prints errors (goal: none), p50/p95/p99 of the metrics endpoint (goal p99 < 200 ms) and of the run
page, requests/s, the epochs the run trained meanwhile, code version and cores. Never asserts;
stops by itself after --duration seconds and kills everything it started, on Ctrl-C too.
"""
from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import predict as shared  # noqa: E402  bench/predict.py: free_port, digits_zip, gunicorn, percentile

ROOT = shared.ROOT
GOAL_P99_MS = 200.0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=20, help="people watching the run (20)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load (30)")
    p.add_argument("--interval", type=float, default=0.0,
                   help="seconds between one client's polls (0: back to back; the page uses 1.5)")
    p.add_argument("--page-every", type=int, default=10, help="reload the run page every N polls (10)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data dir (and print where it is)")
    return p.parse_args()


# --- Processes ---------------------------------------------------------------------------------


def start_process(command: list[str], log_path: Path, env: dict) -> subprocess.Popen:
    log = open(log_path, "wb")
    try:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=shared._die_with_parent if sys.platform.startswith("linux") else None)
    finally:
        log.close()


def start_redis(data_dir: Path, port: int) -> subprocess.Popen:
    proc = start_process(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                          "no", "--dir", str(data_dir)], data_dir / "redis.log", dict(os.environ))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket_to(port) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.05)  # a poll interval, bounded by the deadline
    raise SystemExit(f"redis-server did not answer on port {port}")


def socket_to(port: int):
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=1)


def start_train_worker(data_dir: Path) -> subprocess.Popen:
    """The Procfile's `train` line as `make run` starts it (as a module, so the venv's celery runs)."""
    from dlstudio.launcher import SHARED_MACHINE_TRAIN_ENV

    return start_process([sys.executable, "-m", "celery", "-A", "dlstudio", "worker", "-Q", "train", "--pool=solo",
                          "-n", "train@bench-load", "--loglevel=INFO", "--without-gossip", "--without-mingle"],
                         data_dir / "train-worker.log",
                         {**SHARED_MACHINE_TRAIN_ENV, **os.environ, "PYTHONUNBUFFERED": "1"})


def stop(proc: subprocess.Popen | None) -> None:
    shared.stop_gunicorn(proc)  # SIGTERM to the process group, then SIGKILL: right for every child here


# --- Set-up --------------------------------------------------------------------------------------


def fill(data_dir: Path, clients: int):
    """A team of `clients` viewers with session cookies, a ready digits dataset and a run queued to train
    for longer than the load lasts. Returns (run, cookies, api token)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from apps.datasets.ingest import dataset_ingest
    from apps.datasets.services import dataset_create
    from apps.experiments.services import experiment_create
    from apps.runs.services import run_start
    from apps.teams.models import Membership
    from apps.teams.services import team_create, token_create

    User = get_user_model()
    owner = User.objects.create_user(username="owner")
    team = team_create(name="Bench lab", slug="bench-lab", owner=owner)
    _, key = token_create(user=owner, name="bench")
    cookies = []
    for i in range(clients):
        user = User.objects.create_user(username=f"watcher{i:02d}")  # no password: signed in by session
        Membership.objects.create(team=team, user=user, role=Membership.Role.VIEWER)
        browser = Client()
        browser.force_login(user)
        cookies.append(browser.cookies["sessionid"].value)
    started = time.perf_counter()
    dataset = dataset_create(team=team, user=owner, name="Digits 28x28", options={
        "val_fraction": 0.2, "test_fraction": 0.1, "image_size": None, "resize_mode": "squash", "color": "auto",
        "seed": 0}, source_path=shared.digits_zip(data_dir / "digits.zip"))
    dataset_ingest(dataset_id=dataset.pk)  # in-process; nobody consumes the `ingest` queue here
    dataset.refresh_from_db()
    if dataset.status != "ready":
        raise SystemExit(f"the digits dataset did not ingest: {dataset.error}")
    print(f"set-up: {dataset.num_images} digits ingested in {time.perf_counter() - started:.1f} s")
    experiment = experiment_create(team=team, user=owner, name="smallcnn digits", dataset=dataset,
                                   config={"arch": "smallcnn", "epochs": 1000, "batch_size": 64,
                                                    "seed": 0})
    return run_start(experiment=experiment, user=owner), cookies, key


def wait_for_training(run, worker: subprocess.Popen, log_path: Path, *, epochs: int = 2, timeout: float = 180):
    from apps.runs.models import Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the training worker exited with {worker.returncode}:\n{log_path.read_text()[-3000:]}")
        current = Run.objects.get(pk=run.pk)
        if current.status not in ("queued", "running"):
            raise SystemExit(f"the run ended before the load: {current.status} {current.error}")
        if current.epoch >= epochs:
            return current
        time.sleep(0.2)  # a poll interval, bounded by the deadline
    raise SystemExit(f"the run did not train {epochs} epochs within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


# --- Clients --------------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """One person with the run page open."""

    def __init__(self, port: int, run_id: int, cookie: str, args, start_at: threading.Event, stop_at: list[float]):
        super().__init__(daemon=True)
        self.port, self.run_id, self.args = port, run_id, args
        self.headers = {"Cookie": f"sessionid={cookie}", "Connection": "keep-alive", "Accept": "application/json"}
        self.start_at, self.stop_at = start_at, stop_at
        self.times: dict[str, list[float]] = {"metrics": [], "page": [], "detail": []}
        self.errors: list[str] = []
        self.throttled = self.reconnects = 0
        self.after = 0
        self.conn = None

    def get(self, kind: str, path: str) -> bytes | None:
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
            body = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn, self.reconnects = None, self.reconnects + 1
        except (OSError, http.client.HTTPException) as exc:
            # The server closed an idle keep-alive connection: once more on a new one (timed too).
            if self.conn is not None:
                self.conn.close()
            self.conn, self.reconnects = None, self.reconnects + 1
            if kind.endswith("!"):
                self.errors.append(f"{path}: {type(exc).__name__}: {exc}")
                return None
            return self.get(kind + "!", path)
        self.times[kind.rstrip("!")].append((time.perf_counter() - started) * 1000)
        if response.status == 429:
            self.throttled += 1
        if response.status != 200:
            self.errors.append(f"{path}: {response.status} {body[:120]!r}")
            return None
        return body

    def run(self):
        import json

        self.start_at.wait()
        polls = 0
        try:
            while time.monotonic() < self.stop_at[0]:
                if polls % self.args.page_every == 0:
                    page = self.get("page", f"/runs/{self.run_id}/")
                    if page is not None:  # the page says where the charts end, as run.js reads it
                        found = re.search(rb'data-last-epoch="(\d+)"', page)
                        self.after = int(found.group(1)) if found else self.after
                body = self.get("metrics", f"/api/runs/{self.run_id}/metrics?after={self.after}")
                polls += 1
                if body is not None:
                    data = json.loads(body)
                    if data["epochs"]:
                        self.after = data["epochs"][-1]["epoch"]
                        self.get("detail", f"/api/runs/{self.run_id}")
                if self.args.interval:
                    time.sleep(self.args.interval)  # the page's pace between polls (not a synchronisation)
        finally:
            if self.conn is not None:
                self.conn.close()


def load(port: int, run_id: int, cookies: list[str], args):
    start_at, stop_at = threading.Event(), [float("inf")]
    watchers = [Watcher(port, run_id, cookie, args, start_at, stop_at) for cookie in cookies]
    for w in watchers:
        w.start()
    began = time.monotonic()
    stop_at[0] = began + args.duration
    start_at.set()
    for w in watchers:
        w.join(timeout=args.duration + 60)
    return watchers, time.monotonic() - began


# --- Report ----------------------------------------------------------------------------------------


def report(args, watchers, seconds: float, run_before, run_after, cpu, load_start: float):
    import django
    import torch

    from dlstudio import gunicorn_conf
    from dlstudio.version import code_version

    times = {kind: [t for w in watchers for t in w.times[kind]] for kind in ("metrics", "page", "detail")}
    total = sum(len(v) for v in times.values())
    errors = [e for w in watchers for e in w.errors]
    p = {kind: [shared.percentile(v, q) for q in (50, 95, 99)] for kind, v in times.items()}
    print()
    print(f"code {code_version()}, {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
          f"torch {torch.__version__}, Django {django.get_version()}; gunicorn {gunicorn_conf.workers} workers x "
          f"{gunicorn_conf.threads} threads ({gunicorn_conf.worker_class}); one training worker (solo pool)")
    pace = "back to back" if not args.interval else f"every {args.interval:g} s"
    print(f"{len(watchers)} clients, {seconds:.1f} s, polling {pace}, the page reloaded every {args.page_every} polls; "
          f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print()
    print("| figure | measured | goal | |")
    print("|---|---|---|---|")
    print(f"| errors (non-200 answers and failed requests) | {len(errors)} of {total} | none | "
          f"{'met' if not errors else 'MISSED'} |")
    m = p["metrics"]
    print(f"| `GET /api/runs/<id>/metrics?after=N`, {len(times['metrics'])} requests: p50 / p95 / p99 | "
          f"{m[0]:.1f} / {m[1]:.1f} / {m[2]:.1f} ms | p99 < {GOAL_P99_MS:.0f} ms | "
          f"{'met' if m[2] < GOAL_P99_MS else 'MISSED'} |")
    g = p["page"]
    print(f"| `GET /runs/<id>/` (the run page), {len(times['page'])} requests: p50 / p95 / p99 | "
          f"{g[0]:.1f} / {g[1]:.1f} / {g[2]:.1f} ms | | |")
    d = p["detail"]
    print(f"| `GET /api/runs/<id>` (after new epochs), {len(times['detail'])} requests: p50 / p95 / p99 | "
          f"{d[0]:.1f} / {d[1]:.1f} / {d[2]:.1f} ms | | |")
    print(f"| requests/s, all kinds | {total / seconds:.0f} /s | | |")
    trained = run_after.epoch - run_before.epoch
    print(f"| epochs the run trained during the load | {trained} ({trained / seconds:.2f} /s; status "
          f"{run_after.status}) | | |")
    print()
    per_client = [sum(len(v) for v in w.times.values()) for w in watchers]
    print(f"requests per client: min {min(per_client)}, max {max(per_client)}; throttled (429): "
          f"{sum(w.throttled for w in watchers)}; reconnects: {sum(w.reconnects for w in watchers)}")
    print(f"CPU seconds during the load: gunicorn {cpu['web']:.1f}, training worker {cpu['train']:.1f}, "
          f"this script {cpu['self']:.1f} (of {os.cpu_count() * seconds:.0f} available)")
    for e in errors[:10]:
        print(f"error: {e}")


def cpu_seconds(pid: int) -> float:
    meter = shared.CpuMeter(pid)
    return meter.server()


def main():
    args = parse_args()
    load_start = os.getloadavg()[0]

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    data_dir = Path(tempfile.mkdtemp(prefix="dlstudio-bench-load-"))
    redis_proc = worker = web = None
    status = 0
    try:
        redis_port = shared.free_port()
        redis_proc = start_redis(data_dir, redis_port)
        shared.setup_django(data_dir, redis_port)
        run, cookies, key = fill(data_dir, args.clients)
        from django.db import connections

        from apps.runs.models import Run

        worker = start_train_worker(data_dir)
        run_before = wait_for_training(run, worker, data_dir / "train-worker.log")
        connections.close_all()

        port = shared.free_port()
        log_path = data_dir / "gunicorn.log"
        web = shared.start_gunicorn(data_dir, port, log_path)
        shared.wait_until_up(web, port, key, log_path)
        run_before = Run.objects.get(pk=run.pk)
        cpu_before = (cpu_seconds(web.pid), cpu_seconds(worker.pid), sum(os.times()[:2]))
        watchers, seconds = load(port, run.pk, cookies, args)
        cpu_after = (cpu_seconds(web.pid), cpu_seconds(worker.pid), sum(os.times()[:2]))
        run_after = Run.objects.get(pk=run.pk)
        cpu = {name: after - before for name, before, after in zip(("web", "train", "self"), cpu_before, cpu_after)}
        report(args, watchers, seconds, run_before, run_after, cpu, load_start)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    finally:
        for proc in (web, worker, redis_proc):
            stop(proc)
        if args.keep:
            print(f"data dir kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
