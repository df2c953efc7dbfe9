"""What `make run` starts: the Procfile's processes, shaped by DLSTUDIO_WORKER_QUEUES, plus a local
Redis when nothing answers at REDIS_URL."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
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


def child_environment(data_dir: Path) -> dict[str, str]:
    """This process's environment for the processes a supervisor starts: this Python's scripts first on
    PATH (so `celery` is the one beside it) and the data dir this process settled on."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DLSTUDIO_DATA_DIR", str(data_dir))
    return env


def without_password(url: str) -> str:
    """`url` fit to print: its password, if any, as `**`."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":**@", 1)).geturl()


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


GPU_LIST = re.compile(r"[0-9]+(,[0-9]+)*")  # ASCII digits only: `\d` would take other scripts' digits


def gpu_indexes(value: str, present: list[int]) -> list[int]:
    """The GPUs `manage.py worker --gpus VALUE` asks for, among the `present` ones (NVML's indexes).

    `all` is every present GPU (none on a machine without them: one CPU worker then); otherwise a comma
    list of indexes, each present, none twice.
    """
    if value == "all":
        return list(present)
    if not GPU_LIST.fullmatch(value):
        raise LaunchError(f"--gpus takes 'all' or GPU indexes separated by commas, such as 0,2; "
                          f"{value!r} is neither.")
    asked = [int(word) for word in value.split(",")]
    twice = sorted({index for index in asked if asked.count(index) > 1})
    if twice:
        raise LaunchError(f"--gpus {value} names GPU {', '.join(map(str, twice))} more than once; "
                          "name each GPU once.")
    missing = [index for index in asked if index not in present]
    if missing:
        there = (f"the GPUs here are {', '.join(map(str, present))}" if present
                 else "NVML sees no GPU here (use --gpus all for one CPU training worker)")
        raise LaunchError(f"--gpus {value} asks for GPU {', '.join(map(str, missing))}, which does not "
                          f"exist: {there}.")
    return asked


def training_worker_commands(train: str, gpus: list[int], host: str) -> dict[str, str]:
    """One training worker per GPU, named `gpuN@host` and seeing only GPU N; without GPUs, one CPU
    worker named `cpu@host`. `train` is the Procfile's training worker command line.

    CUDA numbers GPUs fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, which makes its numbers
    NVML's (and nvidia-smi's), the ones `--gpus` takes.
    """
    if not gpus:
        return {"cpu": _named(train, f"cpu@{host}")}
    return {f"gpu{index}": f"CUDA_VISIBLE_DEVICES={index} CUDA_DEVICE_ORDER=PCI_BUS_ID "
                           f"{_named(train, f'gpu{index}@{host}')}"
            for index in gpus}


def _named(command: str, name: str) -> str:
    named, count = re.subn(r"(?<=\s)-n \S+", f"-n {name}", command)
    return named if count else f"{command} -n {name}"
