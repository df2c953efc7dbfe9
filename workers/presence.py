"""Workers announce themselves in Redis so the web app can list them (queues, device).

Each worker refreshes a key with a short expiry every few seconds from a background thread; a
worker that dies simply disappears from the list when its key expires.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import redis

PREFIX = "dlstudio:worker:"
TTL = 30
REFRESH = 5

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


def announce(conn: redis.Redis, *, name: str, queues, device: str) -> None:
    payload = {"name": name, "queues": sorted(queues), "device": device, "seen": time.time()}
    conn.set(PREFIX + name, json.dumps(payload), ex=TTL)


def withdraw(conn: redis.Redis, *, name: str) -> None:
    conn.delete(PREFIX + name)


def workers(conn: redis.Redis) -> list[dict]:
    keys = sorted(conn.scan_iter(match=PREFIX + "*", count=100))
    found = [json.loads(raw) for raw in conn.mget(keys) if raw] if keys else []
    return [{"name": w["name"], "queues": w["queues"], "device": w["device"]} for w in found]


class Announcer(threading.Thread):
    """Keeps this worker's key fresh until `stop()`; survives Redis restarts by retrying."""

    def __init__(self, *, url: str, name: str, queues):
        super().__init__(name="dlstudio-presence", daemon=True)
        self.url, self.name, self.queues = url, name, list(queues)
        self._stopped = threading.Event()

    def run(self):
        device = detect_device(self.queues)
        conn = client(self.url)
        while not self._stopped.is_set():
            try:
                announce(conn, name=self.name, queues=self.queues, device=device)
            except redis.RedisError:
                pass  # the broker is down or restarting; the next round tries again
            self._stopped.wait(REFRESH)

    def stop(self):
        self._stopped.set()
        try:
            withdraw(client(self.url), name=self.name)
        except redis.RedisError:
            pass
