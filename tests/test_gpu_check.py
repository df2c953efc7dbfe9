"""The GPU check cannot rot between the rare days a GPU is at hand: `bench/gpu_check.sh --smoke` runs
the same script on the CPU with tiny sizes, with every package a bare GPU machine lacks refused."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Not on a GPU machine that has only Python, torch, torchvision, numpy, Pillow (and nvidia-ml-py);
# captum and what it imports come from bench/wheels/ there.
ABSENT = {"django", "rest_framework", "drf_spectacular", "drf_spectacular_sidecar", "celery", "kombu", "redis",
          "psycopg", "psycopg_binary", "dj_database_url", "whitenoise", "gunicorn", "honcho", "plotly", "sklearn",
          "scikit_learn", "scipy", "optuna", "onnx", "safetensors", "torchinfo", "psutil", "pytest", "playwright"}


def bare_python(tmp_path: Path) -> Path:
    """A python that sees this venv's packages except ABSENT: `-S` leaves site-packages off the path,
    and PYTHONPATH names a folder of links to every other entry in it."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    packages = tmp_path / "packages"
    packages.mkdir()
    for entry in site.iterdir():
        top = entry.name.split("-")[0].split(".")[0].lower()
        if top not in ABSENT and not entry.name.endswith(".pth"):
            (packages / entry.name).symlink_to(entry)
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{packages}" exec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    return python


def test_the_smoke_run_prints_every_row_with_nothing_but_torch_at_hand(tmp_path):
    out = tmp_path / "figures.json"
    env = {**os.environ, "PYTHON": str(bare_python(tmp_path)), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(["bash", "bench/gpu_check.sh", "--smoke", "--json", str(out)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("bare loop", "pack resident", "pack streamed", "gpu_memory_peak_mb", "`Predictor.predict`",
                "Grad-CAM `Predictor.explain`", "NVML"):
        assert row in result.stdout, (row, result.stdout)
    figures = json.loads(out.read_text())
    assert figures["images_per_s"]["bare"] > 0 and figures["images_per_s"]["resident"] > 0
    assert figures["gradcam_ms"]["p50"] > 0 and figures["predict_ms"]["p50"] > 0
    assert figures["nvml"] == [] and figures["gpu_memory_peak_mb"] is None  # this machine has no GPU


def test_the_bare_python_lacks_what_a_bare_gpu_machine_lacks(tmp_path):
    python = bare_python(tmp_path)
    for module, present in (("django", False), ("psutil", False), ("torch", True), ("captum.attr", True)):
        result = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
        assert (result.returncode == 0) == present, (module, result.stderr[-500:])
