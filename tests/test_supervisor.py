"""`make run`'s loop on its own, with stand-in processes: a process that exits is started again and the
others go on, a crash loop is said, SIGTERM stops everything."""
import json
import os
import signal
import subprocess
import sys

from dlstudio.supervisor import argv_and_env, read_state
from tests.support.services import ROOT, wait_until

DRIVER = """
import sys
from pathlib import Path
from dlstudio.supervisor import Supervisor
commands = {"steady": "python -c 'import time; time.sleep(600)'",
            "crashy": "WHY=because python -c 'import os, sys; print(dict(os.environ)); sys.exit(3)'"}
sys.exit(Supervisor(commands, env=dict(__import__('os').environ), cwd='.', data_dir=Path(sys.argv[1]),
                    first_pause=0.05, max_pause=0.5).run())
"""


def state(data_dir):
    path = data_dir / "processes.json"
    return {p["name"]: p for p in json.loads(path.read_text())["processes"]} if path.is_file() else {}


def test_a_process_that_exits_is_started_again_a_crash_loop_is_said_and_sigterm_stops_all(tmp_path):
    loop = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        crashy = wait_until(lambda: state(tmp_path).get("crashy", {}).get("crash_looping") and state(tmp_path),
                            timeout=30, message="the crash loop to be said")
        assert crashy["crashy"]["last_exit"] == 3 and crashy["crashy"]["restarts"] >= 4
        steady = crashy["steady"]
        assert steady["state"] == "running" and steady["restarts"] == 0  # the others go on
        os.kill(steady["pid"], signal.SIGKILL)
        wait_until(lambda: state(tmp_path)["steady"]["pid"] not in (None, steady["pid"]), timeout=30,
                   message="the killed process to be started again")
        assert state(tmp_path)["steady"]["restarts"] == 1 and state(tmp_path)["steady"]["last_exit"] == -9
        assert read_state(tmp_path) is not None  # what the health check reads, while the loop lives
        last_pid = state(tmp_path)["steady"]["pid"]
        loop.send_signal(signal.SIGTERM)
        assert loop.wait(timeout=60) == 0
        wait_until(lambda: not os.path.exists(f"/proc/{last_pid}"), timeout=30, message="its process to be gone")
    finally:
        if loop.poll() is None:
            loop.kill()
    output = loop.stdout.read()
    assert "because" in output and "exited with 3; it keeps exiting (a crash loop)" in output
    assert read_state(tmp_path) is None  # the loop is gone, and so is its state


def test_a_command_s_leading_assignments_become_its_environment():
    assert argv_and_env("OMP_WAIT_POLICY=PASSIVE celery -A dlstudio worker -Q train") == (
        ["celery", "-A", "dlstudio", "worker", "-Q", "train"], {"OMP_WAIT_POLICY": "PASSIVE"})
    assert argv_and_env("gunicorn app --config 'python:x'") == (["gunicorn", "app", "--config", "python:x"], {})
