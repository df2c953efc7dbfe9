"""Settings come from the environment, with loud errors for bad values, and pass check --deploy."""
import os
import subprocess
import sys

from tests.support.services import ROOT


def django_check(*args, **env):
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    full_env = {**inherited, "DJANGO_SETTINGS_MODULE": "dlstudio.settings", **env}
    return subprocess.run([sys.executable, "manage.py", "check", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = django_check("--deploy", "--fail-level", "WARNING",
                          DLSTUDIO_DATA_DIR=str(tmp_path), DLSTUDIO_DEBUG="false", DLSTUDIO_HTTPS="true",
                          DLSTUDIO_SECRET_KEY="x7#kQ2!vLp9@Zr4$Wm8^Tn3&Yb6*Hc1(Jd5)Gf0-Se7+Ua2=Ri9")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_bad_value_names_the_variable(tmp_path):
    result = django_check(DLSTUDIO_DATA_DIR=str(tmp_path), DLSTUDIO_MAX_UPLOAD_MB="lots")
    assert result.returncode != 0
    assert "DLSTUDIO_MAX_UPLOAD_MB must be a whole number" in result.stderr


def test_a_bad_rate_names_the_variable(tmp_path):
    result = django_check(DLSTUDIO_DATA_DIR=str(tmp_path), DLSTUDIO_API_RATE="lots")
    assert result.returncode != 0
    assert "DLSTUDIO_API_RATE must be a rate such as 3000/min, not 'lots'" in result.stderr


def test_unknown_worker_queue_is_refused(tmp_path):
    result = django_check(DLSTUDIO_DATA_DIR=str(tmp_path), DLSTUDIO_WORKER_QUEUES="default,gpu")
    assert "DLSTUDIO_WORKER_QUEUES may name default, ingest and train, not gpu" in result.stderr


def test_secret_key_is_generated_once_into_the_data_dir(tmp_path):
    env = {"DLSTUDIO_DATA_DIR": str(tmp_path), "DLSTUDIO_SECRET_KEY": ""}
    assert django_check(**env).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50 and (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    django_check(**env)
    assert (tmp_path / "secret_key").read_text() == key


def test_processes_starting_together_on_a_fresh_data_dir_agree_on_one_secret_key(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
           "DLSTUDIO_DATA_DIR": str(tmp_path), "DLSTUDIO_SECRET_KEY": "", "DJANGO_SETTINGS_MODULE": "dlstudio.settings"}
    script = "from django.conf import settings; print(settings.SECRET_KEY)"
    starts = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [process.communicate(timeout=120) for process in starts]
    assert all(process.returncode == 0 for process in starts), [err for _, err in results]
    assert {out.strip() for out, _ in results} == {(tmp_path / "secret_key").read_text().strip()}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".secret_key")] == []


def test_a_key_another_process_wrote_first_is_the_one_read(tmp_path, monkeypatch):
    """The race itself: the file appears between this process's look and its write."""
    import pathlib

    from dlstudio import settings

    (tmp_path / "secret_key").write_text("the-first-process-key")
    monkeypatch.setattr(settings, "DATA_DIR", tmp_path)
    monkeypatch.setenv("DLSTUDIO_SECRET_KEY", "")
    monkeypatch.setattr(pathlib.Path, "exists", lambda self: False)  # it looked before the other one wrote
    assert settings._secret_key() == "the-first-process-key"


def test_the_default_database_is_sqlite_in_wal_mode_with_a_busy_timeout(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")},
           "DLSTUDIO_DATA_DIR": str(tmp_path)}
    script = ("from django.db import connection; c = connection.cursor(); "
              "print(c.execute('PRAGMA journal_mode').fetchone()[0], c.execute('PRAGMA busy_timeout').fetchone()[0])")
    result = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["wal", "30000"], result.stderr
    assert (tmp_path / "db.sqlite3").exists()
