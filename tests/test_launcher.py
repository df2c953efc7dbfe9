"""What `make run` starts, shaped by DLSTUDIO_WORKER_QUEUES."""
import pytest

from dlstudio import launcher
from tests.support.services import ROOT

PROCFILE = ROOT / "Procfile"


def test_all_queues_start_web_both_workers_and_beat():
    commands = launcher.procfile_commands(PROCFILE, ["default", "ingest", "train"])
    assert set(commands) == {"web", "worker", "train", "beat"}
    assert "-Q default,ingest " in commands["worker"] and "--pool=prefork" in commands["worker"]
    assert "-Q train " in commands["train"] and "--pool=solo" in commands["train"]


def test_the_training_worker_lets_its_threads_sleep_unless_told_otherwise():
    # Spinning OpenMP threads starve the web server on the same machine (bench/load.py).
    assert launcher.procfile_commands(PROCFILE, ["train"], environ={})["train"].startswith(
        "OMP_WAIT_POLICY=PASSIVE celery ")
    assert launcher.procfile_commands(PROCFILE, ["train"], environ={"OMP_WAIT_POLICY": "ACTIVE"})[
        "train"].startswith("celery ")


def test_a_gpu_machine_runs_only_the_training_worker():
    commands = launcher.procfile_commands(PROCFILE, ["train"])
    assert "worker" not in commands and "train" in commands


def test_without_train_no_training_worker_starts():
    commands = launcher.procfile_commands(PROCFILE, ["default", "ingest"])
    assert "train" not in commands and "-Q default,ingest " in commands["worker"]


def test_a_remote_redis_that_does_not_answer_is_a_clear_error(tmp_path):
    with pytest.raises(launcher.LaunchError, match="Nothing answers at REDIS_URL=redis://10.255.255.1"):
        launcher.local_redis_command("redis://10.255.255.1:6379/0", tmp_path, ROOT / "bin")


def test_a_local_redis_keeps_its_data_under_the_data_dir(tmp_path):
    command = launcher.local_redis_command("redis://127.0.0.1:6390/0", tmp_path, ROOT / "bin")
    assert f"--dir {tmp_path / 'redis'}" in command and "--port 6390" in command


def test_gpu_workers_are_the_procfile_s_training_worker_bound_to_one_gpu_each():
    from honcho.environ import parse_procfile
    train = parse_procfile(PROCFILE.read_text()).processes["train"]
    commands = launcher.training_worker_commands(train, [0, 2], "box")
    assert commands["gpu2"] == ("CUDA_VISIBLE_DEVICES=2 CUDA_DEVICE_ORDER=PCI_BUS_ID "
                                "celery -A dlstudio worker -Q train --pool=solo -n gpu2@box --loglevel=INFO")
    assert set(commands) == {"gpu0", "gpu2"}
    assert launcher.training_worker_commands(train, [], "box") == {
        "cpu": "celery -A dlstudio worker -Q train --pool=solo -n cpu@box --loglevel=INFO"}
