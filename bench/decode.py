"""Decoding within a budget: peak memory and CPU time of decoding one image, hostile or ordinary.

    PYTHONPATH=. .venv/bin/python bench/decode.py [--size 224] [--only NAME]

Each image is written to a temporary file, then decoded by `imaging.load_array` in a fresh
subprocess that has already imported the engine and read the file: the figure is that process's
peak resident memory (VmHWM, reset just before the decode through /proc/self/clear_refs) above its
resident memory then, and its CPU time. The hostile images are tiny files that decode to hundreds
of megabytes; the "largest accepted" ones sit just under `decode_budget.DECODE_BUDGET` for their format
and mode, where the estimate (`decode_budget.decode_cost`) is tightest. Prints, never asserts; run it
with PYTHONPATH at another checkout to measure that one (the images are made with Pillow alone).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin

CHILD = r"""
import json, re, sys, time
def status(key):
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024
from workers.engine.ingest import imaging
data = open(sys.argv[1], "rb").read()
size = int(sys.argv[2])
try:
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
except OSError:
    pass
base, started = status("VmRSS"), time.process_time()
try:
    arr = imaging.load_array(data, size=size, resize_mode="squash", channels=1)
    outcome = f"decoded to {arr.shape[0]}x{arr.shape[1]}x{arr.shape[2]}"
except Exception as exc:
    outcome = f"refused: {exc}"
print(json.dumps({"peak": status("VmHWM") - base, "cpu": time.process_time() - started, "outcome": outcome}))
"""


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def gradient(side: int, dtype, top: float) -> np.ndarray:
    ramp = np.linspace(0, top, side, dtype=np.float64)
    return (ramp[None, :] * 0.5 + ramp[:, None] * 0.5).astype(dtype)


def one_strip_tiff(img: Image.Image) -> bytes:
    old = TiffImagePlugin.STRIP_SIZE
    TiffImagePlugin.STRIP_SIZE = 2**40  # a single strip: libtiff holds all of it while decoding
    try:
        return encode(img, "TIFF", compression="tiff_deflate")
    finally:
        TiffImagePlugin.STRIP_SIZE = old


def hostile() -> dict[str, callable]:
    return {
        "9400x9400 16-bit PNG of zeros": lambda: encode(Image.new("I;16", (9400, 9400)), "PNG"),
        "9400x9400 float TIFF of zeros": lambda: encode(Image.new("F", (9400, 9400)), "TIFF",
                                                        compression="tiff_deflate"),
        "9400x9400 progressive JPEG": lambda: encode(Image.new("RGB", (9400, 9400)), "JPEG", progressive=True),
        "9400x9400 baseline JPEG": lambda: encode(Image.new("RGB", (9400, 9400)), "JPEG"),
        "9400x9400 8-bit gray PNG": lambda: encode(Image.new("L", (9400, 9400)), "PNG"),
        "9400x9400 lossless WebP": lambda: encode(Image.new("RGB", (9400, 9400)), "WEBP", lossless=True),
    }


def largest(size: int) -> dict[str, callable]:
    """Images of each kind about as large as the budget lets through (a square of `side` pixels)."""
    from workers.engine.ingest import decode_budget  # noqa: PLC0415 - only the bench's own process

    def side_for(make_small) -> int:
        lo, hi = 64, 16384
        while hi - lo > 16:
            mid = (lo + hi) // 2
            data = make_small(mid)
            img = Image.open(io.BytesIO(data))
            stored = img.size
            if img.format == "JPEG":
                img.draft(img.mode, (size, size))
            cost = decode_budget.decode_cost(img, stored, decode_budget.reduction_factor(img.size, size), len(data))
            lo, hi = (mid, hi) if cost <= decode_budget.DECODE_BUDGET else (lo, mid)
        return lo

    kinds = {
        "16-bit PNG": lambda s: encode(Image.fromarray(gradient(s, np.uint16, 60000)), "PNG"),
        "float TIFF": lambda s: encode(Image.fromarray(gradient(s, np.float32, 1000.0)), "TIFF",
                                       compression="tiff_deflate"),
        "float TIFF, one strip": lambda s: one_strip_tiff(Image.fromarray(gradient(s, np.float32, 1000.0))),
        "RGBA PNG": lambda s: encode(Image.fromarray(np.dstack([gradient(s, np.uint8, 255)] * 4)), "PNG"),
        "palette PNG, transparent": lambda s: encode(Image.fromarray(gradient(s, np.uint8, 255)).convert("P"), "PNG",
                                                     transparency=0),
        "gray PNG": lambda s: encode(Image.fromarray(gradient(s, np.uint8, 255)), "PNG"),
        "RGB WebP": lambda s: encode(Image.fromarray(np.dstack([gradient(s, np.uint8, 255)] * 3)), "WEBP"),
        "progressive JPEG": lambda s: encode(Image.fromarray(np.dstack([gradient(s, np.uint8, 255)] * 3)), "JPEG",
                                             progressive=True),
        "RGB BMP": lambda s: encode(Image.fromarray(np.dstack([gradient(s, np.uint8, 255)] * 3)), "BMP"),
    }
    cases = {}
    for name, make in kinds.items():
        side = side_for(make)
        cases[f"largest {name} ({side}x{side})"] = (lambda make=make, side=side: make(side))
    return cases


def measure(path: Path, size: int) -> dict:
    # Run beside the image, not here: `python -c` puts its working folder first on sys.path, and
    # PYTHONPATH alone must say which checkout is measured.
    paths = os.environ.get("PYTHONPATH", ".").split(os.pathsep)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in paths if p)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(size)], capture_output=True, text=True,
                         check=False, cwd=path.parent, env=env)
    if out.returncode:
        return {"peak": 0, "cpu": 0, "outcome": f"the child failed: {out.stderr.strip()[-200:]}"}
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="the target size (a model's image_size)")
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    parser.add_argument("--no-largest", action="store_true", help="only the hostile images")
    args = parser.parse_args()
    cases = hostile()
    if not args.no_largest:
        try:
            cases.update(largest(args.size))
        except (ImportError, AttributeError):  # a checkout from before the budget
            pass
    print(f"target size {args.size}; peak = VmHWM above VmRSS just before decoding")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in cases.items():
            if args.only not in name:
                continue
            path = Path(tmp) / "image"
            data = make()
            path.write_bytes(data)
            result = measure(path, args.size)
            print(f"{name:44} {len(data) / 1024:9.0f} KiB  peak {result['peak'] / 2**20:7.1f} MiB  "
                  f"cpu {result['cpu']:6.2f} s  {result['outcome'][:150]}")


if __name__ == "__main__":
    main()
