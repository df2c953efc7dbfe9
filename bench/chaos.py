"""Chaos (issue 12): runs through 2 training workers while a seeded schedule kills, stops and continues, and
restarts the workers, gunicorn and Redis; then what the product says about every run is checked.

    .venv/bin/python bench/chaos.py                          # 20 runs, 10 minutes of chaos
    .venv/bin/python bench/chaos.py --runs 4 --epochs 4 --duration 60 --every 8   # a smoke run
    .venv/bin/python bench/chaos.py --seed 7                 # another schedule

Everything it needs it starts itself, in a throw-away data dir with its own SQLite database: a
redis-server on a free port (restarted with or without its data), a prefork worker for `default` and
`ingest` (the reapers run there), celery beat, two training workers (solo pool, the Procfile's `train`
line) and gunicorn. DLSTUDIO_STALE_AFTER is 10 s, so the reaper hands on a lost run within the test.
Each time one of the processes is killed, stopped or restarted, a supervisor (this script) starts it
again after a moment, as `make run` or systemd would.

Prints, never asserts: the runs that finished and how; whether every epoch of every finished run is
recorded once; whether each run's named checkpoints hold what its row says (the best checkpoint's epoch
is `best_epoch`, the last one's is `epoch`, and the evaluation's hash is the best file's); the leftover
files (temporaries, folders of claims that lost their run) before and after the sweep; and the longest
time any run sat without a live worker (running with a heartbeat that stopped, or queued while a
training worker was idle). Stops by itself and kills everything it started, on Ctrl-C too.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  bench/load.py: start_process, start_redis, stop
import predict as shared  # noqa: E402  bench/predict.py: free_port, setup_django, digits_zip, gunicorn

ROOT = shared.ROOT
STALE_AFTER = 10
# The training workers are what fencing is about, so they take most of the faults.
ACTIONS = {"kill a training worker": 3, "stop and continue a training worker": 3, "warm-stop a training worker": 2,
           "kill gunicorn": 1, "restart redis with its data": 1, "restart redis empty": 1, "kill the general worker": 1}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--epochs", type=int, default=40,
                   help="epochs of each run (40: on 2 cores, 20 runs then outlast the 10 minutes of chaos)")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of chaos (600)")
    p.add_argument("--every", type=float, default=15.0, help="mean seconds between two faults (15)")
    p.add_argument("--settle", type=float, default=300.0, help="at most this long for the runs to end after (300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the temporary data dir (and print where it is)")
    return p.parse_args()


class Processes:
    """What `make run` would run, each restartable, with its log in the data dir."""

    def __init__(self, data_dir: Path, redis_port: int, web_port: int):
        self.data_dir, self.redis_port, self.web_port = data_dir, redis_port, web_port
        self.procs: dict[str, subprocess.Popen | None] = {}

    @property
    def env(self) -> dict:
        # Read when a process starts: the data dir, database and Redis are chosen after this is made.
        return {**os.environ, "DLSTUDIO_STALE_AFTER": str(STALE_AFTER), "PYTHONUNBUFFERED": "1",
                "OMP_WAIT_POLICY": "PASSIVE"}

    def command(self, name: str) -> list[str]:
        celery = [sys.executable, "-m", "celery", "-A", "dlstudio"]
        quiet = ["--loglevel=INFO", "--without-gossip", "--without-mingle"]
        if name.startswith("train"):
            return [*celery, "worker", "-Q", "train", "--pool=solo", "-n", f"{name}@chaos", *quiet]
        if name == "general":
            return [*celery, "worker", "-Q", "default,ingest", "--pool=prefork", "--concurrency=1", "-n",
                    "general@chaos", *quiet]
        if name == "beat":
            return [*celery, "beat", "--loglevel=INFO", "-s", str(self.data_dir / "celerybeat-schedule")]
        raise ValueError(name)

    def start(self, name: str, *, keep_data: bool = True) -> None:
        if name == "redis":
            if not keep_data:
                shutil.rmtree(self.data_dir / "redis")
                (self.data_dir / "redis").mkdir()
            self.procs[name] = load.start_process(
                ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir / "redis")],
                self.data_dir / "redis.log", self.env)
        elif name == "web":
            self.procs[name] = shared.start_gunicorn(self.data_dir, self.web_port, self.data_dir / "gunicorn.log")
        else:
            self.procs[name] = load.start_process(self.command(name), self.data_dir / f"{name}.log", self.env)

    def signal(self, name: str, signum: int) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signum)
            except ProcessLookupError:
                pass

    def gone(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is None or proc.poll() is not None

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.signal(name, signal.SIGCONT)
            load.stop(self.procs[name])


def fill(data_dir: Path, runs: int, epochs: int):
    from django.contrib.auth import get_user_model

    from apps.datasets.ingest import dataset_ingest
    from apps.datasets.services import dataset_create
    from apps.experiments.services import experiment_create
    from apps.runs.services import run_start
    from apps.teams.services import team_create

    owner = get_user_model().objects.create_user(username="owner")
    team = team_create(name="Chaos lab", slug="chaos-lab", owner=owner)
    dataset = dataset_create(team=team, user=owner, name="Digits", options={
        "val_fraction": 0.2, "test_fraction": 0.1, "image_size": None, "resize_mode": "squash", "color": "auto",
        "seed": 0}, source_path=shared.digits_zip(data_dir / "digits.zip"))
    dataset_ingest(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    experiment = experiment_create(team=team, user=owner, name="smallcnn digits", dataset=dataset,
                                   config={"epochs": epochs, "batch_size": 64, "hidden_units": [64]})
    return [run_start(experiment=experiment, user=owner, overrides={"seed": i}).pk for i in range(runs)]


class Orphans:
    """Per run, the longest stretch it spent without a live worker, sampled as the chaos goes on."""

    def __init__(self):
        self.since: dict[int, float] = {}
        self.longest: dict[int, float] = {}

    def sample(self, trainers_alive: int) -> None:
        from django.utils import timezone

        from apps.runs.models import Run
        from dlstudio.jobs import beat_interval

        now, fresh = time.monotonic(), timezone.now() - timezone.timedelta(seconds=2 * beat_interval())
        active = list(Run.objects.filter(status__in=("queued", "running")).values_list("pk", "status", "heartbeat_at"))
        training = sum(1 for _, status, beat in active if status == "running" and beat and beat >= fresh)
        idle = trainers_alive > training
        for pk, status, beat in active:
            orphaned = (status == "running" and (beat is None or beat < fresh)) or (status == "queued" and idle)
            if orphaned:
                self.since.setdefault(pk, now)
                self.longest[pk] = max(self.longest.get(pk, 0.0), now - self.since[pk])
            else:
                self.since.pop(pk, None)


def chaos(processes: Processes, args, orphans: Orphans) -> list[str]:
    rng = random.Random(args.seed)
    happened, pending = [], []  # pending: (when, name, how) restarts and continues
    trainers = ["train-a", "train-b"]
    ends = time.monotonic() + args.duration
    next_fault = time.monotonic() + rng.expovariate(1 / args.every)
    while time.monotonic() < ends:
        now = time.monotonic()
        for item in [p for p in pending if p[0] <= now]:
            pending.remove(item)
            _, name, how = item
            if how == "continue":
                processes.signal(name, signal.SIGCONT)
            else:
                processes.start(name, keep_data=how != "empty")
        for name in ("train-a", "train-b", "general", "beat", "web", "redis"):  # a supervisor's restarts
            if processes.gone(name) and not any(p[1] == name for p in pending):
                pending.append((now + 2.0, name, "restart"))
        if now >= next_fault:
            action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
            target = rng.choice(trainers)
            if action == "kill a training worker":
                processes.signal(target, signal.SIGKILL)
            elif action == "stop and continue a training worker":
                processes.signal(target, signal.SIGSTOP)
                pending.append((now + rng.uniform(5, 3 * STALE_AFTER), target, "continue"))
            elif action == "warm-stop a training worker":
                processes.signal(target, signal.SIGTERM)
            elif action == "kill gunicorn":
                target = "web"
                processes.signal(target, signal.SIGKILL)
            elif action.startswith("restart redis"):
                target = "redis"
                processes.signal(target, signal.SIGKILL)
                processes.procs[target].wait()
                pending.append((now + 1.0, target, "empty" if action.endswith("empty") else "restart"))
            else:
                target = "general"
                processes.signal(target, signal.SIGKILL)
            happened.append(f"{time.strftime('%H:%M:%S')} {action} ({target})")
            next_fault = now + rng.expovariate(1 / args.every)
        orphans.sample(trainers_alive=sum(1 for t in trainers if not processes.gone(t)))
        time.sleep(0.5)  # the chaos' own pace, not a synchronisation
    for _, name, how in pending:  # whatever is still stopped or down comes back for the settling
        if how == "continue":
            processes.signal(name, signal.SIGCONT)
        else:
            processes.start(name)
    return happened


def settle(processes: Processes, run_ids: list[int], orphans: Orphans, seconds: float) -> None:
    from apps.runs.models import Run

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name in ("train-a", "train-b", "general", "beat", "web", "redis"):
            if processes.gone(name):
                processes.start(name)
        if not Run.objects.filter(pk__in=run_ids, status__in=("queued", "running")).exists():
            return
        orphans.sample(trainers_alive=2)
        time.sleep(1.0)  # a poll interval, bounded by the deadline


def checked(run_ids: list[int], began: float) -> dict:
    """What the rows say against what the files hold, for every run; and when the last one ended."""
    from apps.runs.models import EpochMetric, Evaluation, Run
    from dlstudio import storage
    from workers.engine import load_checkpoint

    report = {"succeeded": 0, "failed": 0, "cancelled": 0, "unfinished": 0, "epochs once": 0, "consistent": 0,
              "problems": [], "last ended": 0.0, "handed on": 0}
    for run in Run.objects.filter(pk__in=run_ids).order_by("pk"):
        if run.finished_at:
            report["last ended"] = max(report["last ended"], run.finished_at.timestamp() - began)
        if run.status not in ("succeeded", "failed", "cancelled"):
            report["unfinished"] += 1
            report["problems"].append(f"run {run.pk}: still {run.status}")
            continue
        report[run.status] += 1
        report["handed on"] += run.attempt - 1
        if run.status != "succeeded":
            report["problems"].append(f"run {run.pk}: {run.status}: {run.error[:120]}")
            continue
        epochs = list(EpochMetric.objects.filter(run=run).order_by("epoch").values_list("epoch", flat=True))
        if epochs == list(range(1, run.epochs + 1)):
            report["epochs once"] += 1
        else:
            report["problems"].append(f"run {run.pk}: epochs recorded {epochs}")
        try:
            last = load_checkpoint(storage.absolute(run.last_checkpoint))["epoch"]
            best_path = storage.absolute(run.best_checkpoint)
            best = load_checkpoint(best_path)["epoch"]
            evaluation = Evaluation.objects.get(run=run)
            digest = hashlib.sha256(best_path.read_bytes()).hexdigest()
            if (last, best, evaluation.checkpoint_sha256) == (run.epoch, run.best_epoch, digest):
                report["consistent"] += 1
            else:
                same = "the same" if digest == evaluation.checkpoint_sha256 else "another"
                report["problems"].append(f"run {run.pk}: row epoch {run.epoch} best {run.best_epoch}, files hold "
                                          f"{last} and {best}; the evaluation scored {same} file")
        except Exception as exc:  # a missing or unreadable file is what this counts
            report["problems"].append(f"run {run.pk}: {type(exc).__name__}: {exc}")
    return report


def leftovers(data_dir: Path) -> dict:
    from apps.runs.models import Run

    runs = data_dir / "runs"
    if not runs.is_dir():
        return {"temporaries": 0, "claim folders no row names": 0, "checkpoint files no row names": 0}
    named = {name for pair in Run.objects.values_list("last_checkpoint", "best_checkpoint") for name in pair if name}
    unnamed = [path for path in runs.rglob("*.pt") if str(path.relative_to(data_dir)) not in named]
    folders = [claim for claim in runs.glob("*/claim-*") if not any(
        str(path.relative_to(data_dir)) in named for path in claim.iterdir())]
    return {"temporaries": len(list(runs.rglob(".*.tmp"))), "claim folders no row names": len(folders),
            "checkpoint files no row names": len(unnamed)}


def main():
    args = parse_args()

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    data_dir = Path(tempfile.mkdtemp(prefix="dlstudio-bench-chaos-"))
    (data_dir / "redis").mkdir()
    os.environ["DLSTUDIO_STALE_AFTER"] = str(STALE_AFTER)
    processes = None
    status = 0
    try:
        redis_port = shared.free_port()
        processes = Processes(data_dir, redis_port, shared.free_port())
        processes.start("redis")
        time.sleep(0.5)  # redis-server opens its port at once; the first client retries anyway
        shared.setup_django(data_dir, redis_port)
        run_ids = fill(data_dir, args.runs, args.epochs)
        from django.db import connections

        connections.close_all()
        for name in ("general", "beat", "train-a", "train-b", "web"):
            processes.start(name)
        print(f"{args.runs} runs of {args.epochs} epochs queued; chaos for {args.duration:.0f} s, a fault every "
              f"{args.every:.0f} s on average (seed {args.seed}); DLSTUDIO_STALE_AFTER={STALE_AFTER}")
        orphans = Orphans()
        began = time.time()
        happened = chaos(processes, args, orphans)
        settle(processes, run_ids, orphans, args.settle)
        before = leftovers(data_dir)
        from apps.datasets.services import datasets_sweep
        from apps.runs.services import runs_sweep

        swept = runs_sweep(now=time.time() + 2 * 3600), datasets_sweep(now=time.time() + 2 * 3600)
        after = leftovers(data_dir)
        report = checked(run_ids, began)
        print_report(args, happened, report, before, swept, after, orphans)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    finally:
        if processes is not None:
            processes.stop_all()
        if args.keep:
            print(f"data dir kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    return status


def unnamed(found: dict) -> str:
    return (f"{found['temporaries']} temporaries, {found['claim folders no row names']} claim folders and "
            f"{found['checkpoint files no row names']} checkpoint files that no row names")


def print_report(args, happened, report, before, swept, after, orphans) -> None:
    from dlstudio.version import code_version

    print(f"\ncode {code_version()}, {os.cpu_count()} cores; {len(happened)} faults in {args.duration:.0f} s; "
          f"the last run ended {report['last ended']:.0f} s after the chaos began")
    for line in happened:
        print(f"  {line}")
    n = args.runs
    longest = max(orphans.longest.values(), default=0.0)
    print()
    print("| figure | measured |")
    print("|---|---|")
    print(f"| runs finished | {n - report['unfinished']} of {n} ({report['succeeded']} succeeded, "
          f"{report['failed']} failed, {report['cancelled']} cancelled) |")
    print(f"| runs handed to another worker by the reaper | {report['handed on']} times |")
    print(f"| succeeded runs with every epoch recorded once | {report['epochs once']} of {report['succeeded']} |")
    print(f"| succeeded runs whose checkpoints hold what the row says (and the evaluation's hash) | "
          f"{report['consistent']} of {report['succeeded']} |")
    runs, uploads = swept
    print(f"| leftovers before the sweep | {unnamed(before)} |")
    print(f"| the sweep (as an hour later) removed | {runs['claims']} claim folders, {runs['files']} files in kept "
          f"claim folders, {runs['runs']} run folders, {runs['temporaries']} temporaries; {uploads['uploads']} "
          f"uploads, {uploads['temporaries']} upload temporaries |")
    print(f"| leftovers after the sweep | {unnamed(after)} |")
    print(f"| longest time a run sat without a live worker | {longest:.1f} s (DLSTUDIO_STALE_AFTER={STALE_AFTER}) |")
    for problem in report["problems"][:20]:
        print(f"problem: {problem}")


if __name__ == "__main__":
    sys.exit(main())
