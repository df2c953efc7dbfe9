"""`manage.py worker --gpus`: one supervised training worker per GPU, with a stand-in GPU list (NVML's
reading patched in the command's process) and stand-in workers (real processes that record their
name and environment, then wait)."""
import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from workers.engine import hardware
from tests.support.services import ROOT, wait_until

HOST = socket.gethostname()

# The command in its own process, as `manage.py worker` runs: argv[1] is the GPUs NVML "sees" here.
DRIVER = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from apps.teams.management.commands import worker
from dlstudio import launcher
from workers.engine import hardware
launcher.redis_answers = lambda url: True  # the stand-in workers need no Redis
hardware.gpu_readings = lambda: [{"index": i, "name": "Stand-in GPU"} for i in json.loads(sys.argv[1])]
worker.Command.train_command = lambda self: f"python {sys.argv[2]} -n train@%h"
call_command("worker", *sys.argv[3:])
"""

FAKE_WORKER = """
import json, os, sys, time
from pathlib import Path
out = Path(os.environ["FAKE_WORKER_DIR"])
record = {"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}}
(out / f"{os.getpid()}.tmp").write_text(json.dumps(record))
os.replace(out / f"{os.getpid()}.tmp", out / f"{os.getpid()}.json")
time.sleep(600)
"""


def start(tmp_path, present, *args):
    records = tmp_path / "records"
    records.mkdir()
    (tmp_path / "fake_worker.py").write_text(FAKE_WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUDA_")}
    env.update(FAKE_WORKER_DIR=str(records), DLSTUDIO_DATA_DIR=str(tmp_path / "data"),
               DJANGO_SETTINGS_MODULE="dlstudio.settings", PYTHONPATH=str(ROOT))
    command = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(present), str(tmp_path / "fake_worker.py"),
                                *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    return command, records


def alive(pid):
    try:
        return "State:\tZ" not in open(f"/proc/{pid}/status").read()
    except FileNotFoundError:
        return False


def workers(records):
    """name -> (pid, environment) of the stand-in workers running now."""
    running = {}
    for path in records.glob("*.json"):
        pid, record = int(path.stem), json.loads(path.read_text())
        if alive(pid):
            argv = record["argv"]
            running[argv[argv.index("-n") + 1]] = (pid, record["env"])
    return running


def stop(command, signum):
    command.send_signal(signum)
    try:
        assert command.wait(timeout=60) == 0
    finally:
        if command.poll() is None:
            command.kill()
    return command.stdout.read()


def test_one_worker_per_listed_gpu_a_worker_that_exits_is_restarted_and_ctrl_c_stops_all(tmp_path):
    command, records = start(tmp_path, [0, 1, 2], "--gpus", "0,2")
    try:
        first = wait_until(lambda: len(w := workers(records)) == 2 and w, timeout=60,
                           message="two workers to start")
        assert set(first) == {f"gpu0@{HOST}", f"gpu2@{HOST}"}
        assert first[f"gpu0@{HOST}"][1] == {"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        assert first[f"gpu2@{HOST}"][1] == {"CUDA_VISIBLE_DEVICES": "2", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}

        os.kill(first[f"gpu2@{HOST}"][0], signal.SIGKILL)
        again = wait_until(lambda: (w := workers(records)).get(f"gpu2@{HOST}", first[f"gpu2@{HOST}"])[0]
                           != first[f"gpu2@{HOST}"][0] and w, timeout=60, message="gpu2 to start again")
        assert again[f"gpu2@{HOST}"][1]["CUDA_VISIBLE_DEVICES"] == "2"
        assert again[f"gpu0@{HOST}"][0] == first[f"gpu0@{HOST}"][0]  # the other goes on

        output = stop(command, signal.SIGINT)
    finally:
        if command.poll() is None:
            command.kill()
    assert f"gpu0@{HOST}, gpu2@{HOST}" in output and "exited with -9" in output
    wait_until(lambda: not any(alive(pid) for pid, _ in again.values()), timeout=30,
               message="every worker to be gone")


def test_without_gpus_one_cpu_worker_runs_and_sigterm_stops_it(tmp_path):
    command, records = start(tmp_path, [])
    try:
        running = wait_until(lambda: workers(records), timeout=60, message="the CPU worker to start")
        assert list(running) == [f"cpu@{HOST}"]
        assert running[f"cpu@{HOST}"][1] == {"CUDA_VISIBLE_DEVICES": None, "CUDA_DEVICE_ORDER": None}
        stop(command, signal.SIGTERM)
    finally:
        if command.poll() is None:
            command.kill()
    wait_until(lambda: not alive(running[f"cpu@{HOST}"][0]), timeout=30, message="the worker to be gone")


@pytest.mark.parametrize("value", ["", "0,", ",0", "-1", "0 ,2", "ALL", "0;2", "\u0663", "\uff10", "2.0"])
def test_a_malformed_gpu_list_is_one_sentence(monkeypatch, value):
    monkeypatch.setattr(hardware, "gpu_readings", lambda: [{"index": 0, "name": "x"}])
    with pytest.raises(CommandError, match=r"^--gpus takes 'all' or GPU indexes separated by commas, such as "
                                           r"0,2; .* is neither\.$"):
        call_command("worker", "--gpus", value)


def test_a_gpu_that_does_not_exist_is_named_with_the_ones_that_do(monkeypatch):
    monkeypatch.setattr(hardware, "gpu_readings", lambda: [{"index": 0, "name": "x"}, {"index": 2, "name": "y"}])
    with pytest.raises(CommandError) as raised:
        call_command("worker", "--gpus", "0,5")
    assert str(raised.value) == "--gpus 0,5 asks for GPU 5, which does not exist: the GPUs here are 0, 2."
    with pytest.raises(CommandError, match="names GPU 2 more than once"):
        call_command("worker", "--gpus", "2,2")


def test_asking_for_a_gpu_where_there_is_none_says_how_to_train_on_the_cpu(monkeypatch):
    monkeypatch.setattr(hardware, "gpu_readings", lambda: [])
    with pytest.raises(CommandError, match=r"GPU 0, which does not exist: NVML sees no GPU here \(use --gpus all"):
        call_command("worker", "--gpus", "0")


def test_a_redis_that_does_not_answer_stops_the_command_at_start(monkeypatch, settings):
    monkeypatch.setattr(hardware, "gpu_readings", lambda: [])
    settings.REDIS_URL = "redis://:secret@127.0.0.1:9/0"  # the discard port: nothing listens
    with pytest.raises(CommandError) as raised:
        call_command("worker")
    assert str(raised.value) == ("Nothing answers at REDIS_URL=redis://:**@127.0.0.1:9/0; point it at the web "
                                 "machine's Redis and check that its port is reachable.")
