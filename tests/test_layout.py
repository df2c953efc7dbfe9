"""Habits of the code base that no linter checks (docs/ARCHITECTURE.md): the environment is read in one
place and documented in the README, documentation cites only what the repository holds, and the web
process starts without PyTorch."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = [path for folder in ("apps", "dlstudio", "workers") for path in (ROOT / folder).rglob("*.py")]
# Reading the environment outside settings.py: only to pass it on to child processes, to name the
# settings module before Django starts, or to see the GPUs CUDA_VISIBLE_DEVICES gives the process, as
# CUDA itself does (workers/engine/hardware.py), or to set the workspace cuBLAS needs for a deterministic
# run, and put it back (workers/engine/train/session.py).
PASSING_ON = {"dlstudio/launcher.py", "apps/teams/management/commands/serve.py", "dlstudio/celery.py",
              "dlstudio/wsgi.py", "workers/engine/hardware.py", "workers/engine/train/session.py"}


def test_every_variable_settings_reads_is_in_the_readme_table():
    read = set(re.findall(r'env(?:bool|int|rate|list)?\("([A-Z_]+)"', (ROOT / "dlstudio/settings.py").read_text()))
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", (ROOT / "README.md").read_text(), re.M))
    assert len(read) > 20 and read <= documented, read - documented


def test_only_settings_reads_the_environment():
    readers = {str(path.relative_to(ROOT)) for path in CODE if "os.environ" in path.read_text()
               or "getenv(" in path.read_text()}
    assert readers - PASSING_ON == {"dlstudio/settings.py"}


def test_comments_and_docs_cite_only_what_the_repository_holds():
    texts = [*CODE, *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py"), *(ROOT / "docs").glob("*.md"),
             ROOT / "README.md", *(ROOT / "static/js").glob("*.js"), *ROOT.glob("**/templates/**/*.html")]
    citing = [str(path.relative_to(ROOT)) for path in texts if re.search(r"\b(API|DESIGN)\.md\b", path.read_text())]
    assert citing == []
    for cited in set(re.findall(r"\bdocs/([A-Z]+\.md)", "".join(p.read_text() for p in texts))):
        assert (ROOT / "docs" / cited).is_file(), cited


def test_the_web_process_starts_without_pytorch():
    # Every page and endpoint is importable, the Celery app too, and none of it imports torch: a web
    # process pays for PyTorch only when it first predicts or checks a weights file.
    code = ("import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'dlstudio.settings'); "
            "django.setup(); from django.urls import get_resolver; get_resolver().url_patterns; "
            "import dlstudio.wsgi, workers.broker; "
            "heavy = sorted(m for m in ('torch', 'torchvision', 'sklearn', 'onnx') if m in sys.modules); "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
