"""`make run` (manage.py serve) under kills, as the out-of-memory killer or a careless `kill -9` would do
them: the process killed is started again, the others go on, and only SIGTERM stops everything."""
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.support.services import ROOT, free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def health(base: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{base}/api/health", timeout=2) as answer:
            return json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def processes(data_dir) -> dict:
    try:
        return {p["name"]: p for p in json.loads((data_dir / "processes.json").read_text())["processes"]}
    except (OSError, ValueError):
        return {}


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read()


def test_a_killed_worker_or_web_server_is_started_again_and_the_others_go_on(stack, worker_env, tmp_path):
    stack.start_redis()
    data_dir, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**worker_env, "REDIS_URL": stack.redis.url, "DLSTUDIO_DATA_DIR": str(data_dir),
           "DLSTUDIO_BIND": f"127.0.0.1:{port}", "DLSTUDIO_ADMIN_PASSWORD": "a-long-admin-password"}
    log = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT)

    def output() -> str:
        return (tmp_path / "serve.log").read_text(errors="replace")[-4000:]

    def both_workers_up():
        answer = health(base)
        return answer if answer and {w["queues"][0] for w in answer["workers"]} >= {"default", "train"} else None

    try:
        wait_until(both_workers_up, timeout=180, message="make run to start\n" + output())
        before = processes(data_dir)
        assert set(before) == {"web", "worker", "train", "beat"}

        os.kill(before["train"]["pid"], signal.SIGKILL)  # the training worker, as the OOM killer would
        wait_until(lambda: processes(data_dir)["train"]["pid"] not in (None, before["train"]["pid"]), timeout=60,
                   message="the training worker to be started again\n" + output())
        wait_until(both_workers_up, timeout=120, message="the new training worker to announce itself")
        after = processes(data_dir)
        assert after["train"]["restarts"] == 1 and after["train"]["last_exit"] == -9
        assert {name: after[name]["pid"] for name in ("web", "worker", "beat")} == {
            name: before[name]["pid"] for name in ("web", "worker", "beat")}  # the others went on

        os.kill(after["web"]["pid"], signal.SIGKILL)  # the gunicorn master: the port closes at once
        wait_until(lambda: processes(data_dir)["web"]["pid"] not in (None, after["web"]["pid"])
                   and health(base), timeout=90, message="the web server to answer again\n" + output())
        again = processes(data_dir)
        assert again["web"]["restarts"] == 1
        assert {name: again[name]["pid"] for name in ("worker", "train", "beat")} == {
            name: after[name]["pid"] for name in ("worker", "train", "beat")}
        assert health(base)["status"] == "ok" and not any(p["crash_looping"] for p in health(base)["processes"])

        serve.send_signal(signal.SIGTERM)  # only this stops everything
        assert serve.wait(timeout=90) == 0, output()
        for name, process in again.items():
            wait_until(lambda pid=process["pid"]: not alive(pid), timeout=30, message=f"{name} to be gone")
        assert health(base) is None
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                serve.kill()
        log.close()
