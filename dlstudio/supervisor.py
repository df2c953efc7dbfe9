"""Keeps `make run`'s processes running: one that exits is started again, the others go on.

A process that exits while `make run` is not stopping (killed by the out-of-memory killer, crashed) is
started again after a pause that doubles with each exit in the last minute (1, 2, 4 ... up to 30 s).
Five exits within a minute is a crash loop: it is still retried, every 30 s, and said on the home page
and in `GET /api/health`, read from the state file this loop keeps in the data dir. Only Ctrl-C or
SIGTERM stops everything: each process gets SIGTERM (a training run checkpoints and goes back to the
queue), then SIGKILL after the grace period.

A small loop rather than supervisord or circus: those are daemons with a configuration and a control
socket of their own, where `make run` wants one foreground command that dies with its terminal.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

CRASH_LOOP_EXITS, CRASH_LOOP_WINDOW = 5, 60.0
MAX_PAUSE = 30.0
GRACE = 20.0  # seconds between SIGTERM and SIGKILL when stopping
STATE_FILE = "processes.json"
COLOURS = itertools.cycle(["36", "33", "32", "35", "34", "31"])
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass
class Child:
    name: str
    command: str
    colour: str
    proc: subprocess.Popen | None = None
    restarts: int = 0
    last_exit: int | None = None
    exits: deque = field(default_factory=deque)
    start_at: float = 0.0  # when it may be started (again)

    @property
    def crash_looping(self) -> bool:
        return len(self.exits) >= CRASH_LOOP_EXITS

    def state(self) -> dict:
        running = self.proc is not None and self.proc.poll() is None
        return {"name": self.name, "pid": self.proc.pid if running else None,
                "state": "running" if running else "restarting", "restarts": self.restarts,
                "last_exit": self.last_exit, "crash_looping": self.crash_looping}


def argv_and_env(command: str) -> tuple[list[str], dict[str, str]]:
    """`VAR=value program args` split into the program's argv and its extra environment, so the process
    started is the program itself (its pid is the one to signal), not a shell around it."""
    words = shlex.split(command)
    env = {}
    while words and ASSIGNMENT.match(words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    return words, env


class Supervisor:
    def __init__(self, commands: dict[str, str], *, env: dict, cwd: str, data_dir: Path, out=None,
                 first_pause: float = 1.0, max_pause: float = MAX_PAUSE, state_file: str = STATE_FILE):
        self.children = [Child(name, command, next(COLOURS)) for name, command in commands.items()]
        self.first_pause, self.max_pause = first_pause, max_pause
        self.env, self.cwd, self.out = env, cwd, out or sys.stdout
        self.state_path = Path(data_dir) / state_file  # another name: `make run` on this machine keeps its own
        self.width = max(len(name) for name in commands)
        self._stopping = threading.Event()
        self._print_lock = threading.Lock()

    def run(self) -> int:
        """Until SIGINT or SIGTERM; 0 when stopped so."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self._stopping.set())
        try:
            while not self._stopping.is_set():
                changed = False
                for child in self.children:
                    changed |= self._tend(child)
                if changed:
                    self._write_state()
                self._stopping.wait(0.2)
        finally:
            self._stop_all()
            self.state_path.unlink(missing_ok=True)
        return 0

    def _tend(self, child: Child) -> bool:
        now = time.monotonic()
        if child.proc is None:
            if now < child.start_at:
                return False
            self._start(child)
            return True
        code = child.proc.poll()
        if code is None:
            return False
        _signal(child.proc, signal.SIGKILL)  # what it leaves behind (a pool's processes) holds memory and ports
        child.proc, child.last_exit = None, code
        child.exits.append(now)
        while child.exits and now - child.exits[0] > CRASH_LOOP_WINDOW:
            child.exits.popleft()
        pause = min(self.max_pause, self.first_pause * 2 ** (len(child.exits) - 1))
        child.start_at = now + (self.max_pause if child.crash_looping else pause)
        loop = "; it keeps exiting (a crash loop)" if child.crash_looping else ""
        self._say(child, f"exited with {code}{loop}; starting it again in {child.start_at - now:.1f} s")
        return True

    def _start(self, child: Child) -> None:
        argv, extra = argv_and_env(child.command)
        child.proc = subprocess.Popen(argv, cwd=self.cwd, env={**self.env, **extra}, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)  # Ctrl-C reaches this loop, not the children
        if child.exits:
            child.restarts += 1
        self._say(child, f"started with pid {child.proc.pid}")
        threading.Thread(target=self._relay, args=(child, child.proc), daemon=True).start()

    def _relay(self, child: Child, proc: subprocess.Popen) -> None:
        for line in iter(proc.stdout.readline, b""):
            self._say(child, line.decode(errors="replace").rstrip())
        proc.stdout.close()

    def _say(self, child: Child, text: str) -> None:
        with self._print_lock:
            self.out.write(f"{time.strftime('%H:%M:%S')} \033[{child.colour}m{child.name:<{self.width}} |\033[0m "
                           f"{text}\n")
            self.out.flush()

    def _write_state(self) -> None:
        state = {"supervisor": os.getpid(), "processes": [child.state() for child in self.children]}
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.state_path)

    def _stop_all(self) -> None:
        running = [child for child in self.children if child.proc is not None and child.proc.poll() is None]
        for child in running:
            self._say(child, "stopping")
            _signal(child.proc, signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        for child in running:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._say(child, f"still running after {GRACE:.0f} s; killing it")
                _signal(child.proc, signal.SIGKILL)
                child.proc.wait()


def _signal(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # its own children too (gunicorn's workers, celery's pool)
    except ProcessLookupError:
        pass


def read_state(data_dir: Path) -> list[dict] | None:
    """The processes `make run` keeps on this machine, as its loop last wrote them; None when no loop runs."""
    try:
        state = json.loads((Path(data_dir) / STATE_FILE).read_text())
        os.kill(state["supervisor"], 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state["processes"]
