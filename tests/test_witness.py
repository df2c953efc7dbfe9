"""The witness of a training job (workers/witness.py), with real processes: a worker killed with SIGKILL
leaves its note, and the command given after it runs; a job that says it is done leaves none."""
import os
import signal
import subprocess
import sys
import textwrap

from tests.support.services import wait_until
from workers.witness import vanished

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from workers.witness import Witness
    note, sent, finish = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "finish"
    witness = Witness(note, then=[sys.executable, "-c", f"open({str(sent)!r}, 'w').write('sent')"])
    print("started", flush=True)
    if finish:
        witness.done()
    else:
        time.sleep(60)
""")


def job(tmp_path, how: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(tmp_path / "note.json"), str(tmp_path / "sent"), how],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "started\n"
    return proc


def test_a_killed_job_leaves_its_note_and_the_command_after_it_runs(tmp_path):
    proc = job(tmp_path, "kill")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_until(lambda: (tmp_path / "sent").exists(), timeout=30, message="the command after the note")
    note = vanished(tmp_path / "note.json")
    assert note is not None and {"pid", "at", "last_rss", "peak_rss"} <= set(note)


def test_a_job_that_ends_leaves_no_note_and_runs_no_command(tmp_path):
    proc = job(tmp_path, "finish")
    assert proc.wait(timeout=30) == 0
    assert not (tmp_path / "note.json").exists() and not (tmp_path / "sent").exists()
