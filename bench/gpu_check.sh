#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py; docs/PERFORMANCE.md, "GPU"), runnable where nothing of dlstudio is
# installed: Python with torch, torchvision, numpy and Pillow is enough. Grad-CAM needs captum; where it
# is missing, the wheels in bench/wheels/ (`make gpu-wheels`, for Python 3.12 on x86_64) are unpacked
# into a temporary folder that only this run sees (a wheel is a zip meant to be unpacked as it is, so
# not even pip is needed).
#   bench/gpu_check.sh [--smoke] [--json PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
site=""
trap '[ -n "$site" ] && rm -rf "$site"' EXIT
if ! "$PY" -c "import captum.attr" 2>/dev/null; then
  if compgen -G "bench/wheels/*.whl" > /dev/null; then
    site=$(mktemp -d)
    "$PY" -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' \
      "$site" bench/wheels/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "captum is not installed and bench/wheels/ is empty: run 'make gpu-wheels' where PyPI is reachable" >&2
    exit 2
  fi
fi
export MPLCONFIGDIR=${MPLCONFIGDIR:-$(mktemp -d)}  # captum imports matplotlib, which wants a writable cache
"$PY" bench/gpu_check.py "$@"
