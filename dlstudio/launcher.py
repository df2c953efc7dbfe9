"""What `make run` starts: the Procfile's processes, shaped by DLSTUDIO_WORKER_QUEUES, plus a local
Redis when nothing answers at REDIS_URL."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import redis
from honcho.environ import parse_procfile

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


class LaunchError(Exception):
    """Something the person running `make run` must fix; the message says what."""


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def local_redis_command(url: str, data_dir: Path, bin_dir: Path) -> str:
    """The command line of a redis-server for `url`, its data under the data dir."""
    parsed = urlparse(url)
    if parsed.hostname not in LOCAL_HOSTS:
        raise LaunchError(f"Nothing answers at REDIS_URL={url}; start Redis there, or unset REDIS_URL "
                          "to let make run start a local one.")
    if not shutil.which("redis-server"):
        result = subprocess.run([str(bin_dir / "apt-ensure"), "redis-server", "redis-server"])
        if result.returncode != 0 or not shutil.which("redis-server"):
            raise LaunchError("redis-server is missing: install it with 'sudo apt-get install -y redis-server', "
                              "then run make run again.")
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = parsed.port or 6379
    return (f"redis-server --port {port} --bind 127.0.0.1 --dir {redis_dir} --appendonly yes "
            f"--save 60 1 --protected-mode yes")


# The training worker shares the machine with the web server and the other worker under `make run`.
# OpenMP threads that spin while they wait (the default) then starve everything else and themselves:
# under 20 clients polling a run page, a CPU run trained 2 epochs in 30 s instead of 29 (bench/load.py).
# Sleeping threads cost a dedicated CPU trainer about 12 %; set OMP_WAIT_POLICY=ACTIVE there.
SHARED_MACHINE_TRAIN_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def procfile_commands(procfile: Path, queues: list[str], environ=None) -> dict[str, str]:
    """The Procfile's processes with the workers' queues taken from DLSTUDIO_WORKER_QUEUES.

    `worker` consumes every queue but `train` (prefork); `train` gets its own solo-pool worker,
    one process, so CUDA and DataLoader workers both work. Either is left out when it has no queue.
    """
    environ = os.environ if environ is None else environ
    commands = dict(parse_procfile(procfile.read_text()).processes)
    general = [q for q in queues if q != "train"]
    if general:
        commands["worker"] = re.sub(r"-Q \S+", "-Q " + ",".join(general), commands["worker"])
    else:
        commands.pop("worker")
    if "train" not in queues:
        commands.pop("train")
    else:
        unset = " ".join(f"{k}={v}" for k, v in SHARED_MACHINE_TRAIN_ENV.items() if k not in environ)
        commands["train"] = f"{unset} {commands['train']}".strip()
    return commands
