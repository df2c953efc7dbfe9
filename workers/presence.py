"""Workers announce themselves in Redis so the web app can list them: queues, device, and how busy the
machine is (the worker's CPU and memory, its GPUs).

Each worker refreshes a key with a short expiry every few seconds from a background thread; a
worker that dies simply disappears from the list when its key expires.

Which run a worker is training is not announced here: the run's row says it (`worker`, status
running, a fresh heartbeat), and `dlstudio/status.py` reads it there. Under a prefork pool the training
happens in a child process, not beside this thread; the row, which the training job writes at its
claim and at its end anyway, is as fresh as the request that reads it, and a killed worker's run needs
no cleaning up here.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time

import redis

from workers.engine.hardware import gpu_readings, process_readings

log = logging.getLogger(__name__)

PREFIX = "dlstudio:worker:"
TTL = 30
# Often enough that what a page shows is a few seconds old at most (the health API promises 10 s), rarely
# enough that reading the process tree and the GPUs costs nothing worth counting.
REFRESH = 3

_DETECT = ("import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')")


def detect_device(queues) -> str:
    """The device training would use: the CUDA device name, or `cpu`.

    Only a worker that consumes `train` touches the GPU. It asks a short-lived child process,
    because initialising CUDA here would break any process this worker forks later.
    """
    if "train" not in queues:
        return "cpu"
    try:
        out = subprocess.run([sys.executable, "-c", _DETECT], capture_output=True, text=True, timeout=120)
        return out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else "cpu"
    except (OSError, subprocess.SubprocessError):
        return "cpu"


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def readings(queues) -> dict:
    """How busy this worker is now: its process tree's CPU and memory, and the GPUs it may use.

    Only a worker that consumes `train` uses a GPU (as `detect_device` says); the others report none,
    however many the machine has. NVML, unlike CUDA, may be used in a process that forks later.
    """
    return {**process_readings(), "gpus": gpu_readings() if "train" in queues else []}


def announce(conn: redis.Redis, *, name: str, queues, device: str, status: dict | None = None) -> None:
    payload = {"name": name, "queues": sorted(queues), "device": device, **(status or {}), "seen": time.time()}
    conn.set(PREFIX + name, json.dumps(payload), ex=TTL)


def withdraw(conn: redis.Redis, *, name: str) -> None:
    conn.delete(PREFIX + name)


def workers(conn: redis.Redis) -> list[dict]:
    keys = sorted(conn.scan_iter(match=PREFIX + "*", count=100))
    found = [json.loads(raw) for raw in conn.mget(keys) if raw] if keys else []
    return [{"name": w["name"], "queues": w["queues"], "device": w["device"], "cpu_percent": w.get("cpu_percent"),
             "memory_mb": w.get("memory_mb"), "gpus": w.get("gpus", []), "seen": w["seen"]} for w in found]


class Announcer(threading.Thread):
    """Keeps this worker's key fresh until `stop()`; survives Redis restarts by retrying."""

    def __init__(self, *, url: str, name: str, queues):
        super().__init__(name="dlstudio-presence", daemon=True)
        self.url, self.name, self.queues = url, name, list(queues)
        self._stopped = threading.Event()

    def run(self):
        process_readings()  # the first CPU reading of a process is 0.0: take it before the slow detection
        device = detect_device(self.queues)
        conn = client(self.url)
        while not self._stopped.is_set():
            try:
                status = readings(self.queues)
            except Exception:  # a reading gone wrong must not silence the worker: it is announced without
                log.exception("reading this worker's CPU, memory and GPUs failed")
                status = {}
            try:
                announce(conn, name=self.name, queues=self.queues, device=device, status=status)
            except redis.RedisError:
                pass  # the broker is down or restarting; the next round tries again
            self._stopped.wait(REFRESH)

    def stop(self):
        self._stopped.set()
        try:
            withdraw(client(self.url), name=self.name)
        except redis.RedisError:
            pass
