"""A witness of a training job: a tiny process beside the worker that notes, in a file, that the worker
vanished in the middle of the job, so the reaper can tell a worker that was killed from one that stopped
answering (docs/RELIABILITY.md, "A run that kills its worker").

Only a process's parent learns the signal it died of, and the training worker's parent is whatever
supervises it (`make run`, systemd, a container runtime). So the job starts this witness as its own child
and holds the write end of a pipe to it: the job says "done" through the pipe however it ends (succeeded,
failed, cancelled, given back at a warm shutdown, or its Python unwinding); when the pipe closes without it,
or the witness is orphaned, the process is gone without unwinding (SIGKILL, which is what the kernel's
out-of-memory killer sends, or a crash in native code). The witness then writes the note, with the
worker's resident memory as last sampled, and exits. A worker that is only stopped (SIGSTOP, a frozen VM)
keeps the pipe open: no note. It lives in a session of its own, so a kill of the worker's process group
does not take it along, and imports nothing of the project (it starts in a few milliseconds).

With an object store the reaper may run on another machine than the worker: the witness then runs the
command it was given after the note (`manage.py storage_push <note>`), which puts the note in the store.

Run as `python -I witness.py <note path> [command ...]` with the pipe as its stdin.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

SAMPLE_EVERY = 0.5  # seconds between two looks at the worker's memory and whether it is still there
THEN_TIMEOUT = 300  # seconds the command after the note may take (a store that does not answer)


class Witness:
    """Start beside the job; `done()` when the job ends by any path that runs Python."""

    def __init__(self, note: Path, then: list[str] = ()):
        """`then`: a command to run once the note is written (it sends the note where the reaper reads it)."""
        self.note = Path(note)
        try:
            self.proc = subprocess.Popen([sys.executable, "-I", __file__, str(self.note), *then], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        except OSError:  # no process to spare (out of memory, of pids): the job runs unwitnessed
            self.proc = None

    def done(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.write(b"done\n")
            self.proc.stdin.close()
        except OSError:  # the witness died first; there is nothing for it to note
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def vanished(note: Path) -> dict | None:
    """What the witness noted when the worker vanished; None when it noted nothing."""
    try:
        return json.loads(Path(note).read_text())
    except (OSError, ValueError):
        return None


def _resident_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def watch(note: Path, then: list[str] = ()) -> int:
    worker = os.getppid()
    last_rss = peak_rss = None
    heard = b""
    while True:
        readable, _, _ = select.select([sys.stdin.buffer], [], [], SAMPLE_EVERY)
        if readable:
            chunk = os.read(sys.stdin.fileno(), 64)
            if not chunk:
                break  # the pipe closed: every holder of its other end is gone
            heard += chunk
            if b"done" in heard:
                return 0
        if os.getppid() != worker:
            break  # orphaned: the worker is gone
        rss = _resident_bytes(worker)
        if rss is not None:
            last_rss, peak_rss = rss, max(rss, peak_rss or 0)
    note.parent.mkdir(parents=True, exist_ok=True)
    temporary = note.with_name(f".{note.name}.tmp")
    temporary.write_text(json.dumps({"pid": worker, "at": time.time(), "last_rss": last_rss, "peak_rss": peak_rss}))
    os.replace(temporary, note)
    if then:
        try:
            return subprocess.run(then, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=THEN_TIMEOUT).returncode
        except (OSError, subprocess.TimeoutExpired):  # the note stays here; the reaper counts a lost worker
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(watch(Path(sys.argv[1]), sys.argv[2:]))
