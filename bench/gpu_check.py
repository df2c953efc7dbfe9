"""The GPU check: every figure dlstudio claims for a GPU, measured in one go and printed as one table.

    bench/gpu_check.sh            # on a machine with an NVIDIA GPU: a few minutes
    bench/gpu_check.sh --smoke    # the same code on the CPU with tiny sizes (the test suite runs this)

It needs only Python, torch, torchvision, numpy and Pillow, plus captum for Grad-CAM, which
`gpu_check.sh` installs offline from `bench/wheels/` (`make gpu-wheels`) where it is missing; nothing
of the web app, no database, no network. What it measures (docs/PERFORMANCE.md, "GPU"):

1. the engine's `fit` against a bare hand-written loop, resnet18 on a 50,000-image 32x32 RGB pack,
   bf16 and channels_last on both sides (`engine_vs_bare.py`'s two loops);
2. the engine with the pack resident on the device against the same pack streamed from the host;
3. `Predictor.predict` latency on the device, one PNG per call, and a batch of 64;
4. Grad-CAM (`Predictor.explain`) on the device, one image and a batch of 64;
5. the NVML fields the workers report (`workers/engine/hardware.py`, the same code), and the peak
   device memory `fit` recorded.
It prints figures; it never asserts. `--json PATH` also writes them as JSON.
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine_vs_bare import bare_loop, engine_run, synthetic  # noqa: E402
from machine import code_version, device_name  # noqa: E402
from workers.engine import Predictor  # noqa: E402
from workers.engine.hardware import gpu_readings  # noqa: E402
from workers.engine.ingest.pack_writer import write_pack  # noqa: E402

FULL = {"arch": "resnet18", "images": 50_000, "size": 32, "classes": 10, "epochs": 3, "batch_size": 512,
        "rounds": 2, "calls": 300, "predict_batch": 64}
SMOKE = {"arch": "resnet18", "images": 64, "size": 8, "classes": 4, "epochs": 2, "batch_size": 32,
         "rounds": 1, "calls": 3, "predict_batch": 4}


def timed(fn, calls: int, *, device: torch.device, warmup: int = 3) -> list[float]:
    """Milliseconds of each call, the device synchronised before the clock stops."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def png_of(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, CPU allowed: checks the script runs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    case = SMOKE if args.smoke else FULL
    gpu = torch.cuda.is_available()
    if not gpu and not args.smoke:
        print("no CUDA device: run with --smoke to check the script on the CPU", file=sys.stderr)
        return 2
    device = torch.device("cuda" if gpu else "cpu")
    amp = gpu and torch.cuda.is_bf16_supported()
    if gpu:
        torch.backends.cudnn.benchmark = True
    config = {"arch": case["arch"], "batch_size": case["batch_size"], "epochs": case["epochs"], "lr": 1e-3,
              "optimizer": "adam", "seed": 0, "device": str(device), "amp": "auto"}
    rows: list[tuple[str, str]] = []
    figures: dict = {"device": device_name(device), "case": case, "code": code_version("workers/engine", "bench"),
                     "torch": torch.__version__, "python": platform.python_version(), "bf16": amp}
    started = time.perf_counter()

    images, labels = synthetic(case["images"], case["size"], 3, case["classes"])
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        pack = write_pack(Path(tmp) / "pack", images, labels, np.zeros(len(labels), np.int8),
                          [str(c) for c in range(case["classes"])])

        # 1. engine vs bare; 2. resident vs streaming. Rounds alternate, so drift affects every side.
        bare, resident, streaming, peaks = [], [], [], []
        for r in range(case["rounds"]):
            bare += bare_loop(images=images, labels=labels, config=config, device=device, epochs=case["epochs"],
                              amp=amp)[1:]
            epochs: list[dict] = []
            rates, _ = engine_run(pack=pack, config=config, out_dir=Path(tmp) / f"resident{r}", resident=True,
                                  on_epoch=epochs.append)
            resident += rates[1:]
            peaks += [m.get("gpu_memory_peak_mb") for m in epochs]
            rates, _ = engine_run(pack=pack, config=config, out_dir=Path(tmp) / f"stream{r}", resident=False)
            streaming += rates[1:]
        best = {"bare": max(bare), "resident": max(resident), "streaming": max(streaming)}
        figures["images_per_s"] = {k: round(v, 1) for k, v in best.items()}
        figures["images_per_s_median"] = {k: round(statistics.median(v), 1) for k, v in
                                          (("bare", bare), ("resident", resident), ("streaming", streaming))}
        shape = f"{case['arch']}, {case['images']:,} images {case['size']}x{case['size']}x3, batch {case['batch_size']}"
        rows += [(f"bare loop ({shape}, bf16 {amp}, channels_last {gpu})", f"{best['bare']:,.0f} images/s"),
                 ("engine `fit`, pack resident on the device", f"{best['resident']:,.0f} images/s"),
                 ("engine / bare", f"{best['resident'] / best['bare']:.3f}"),
                 ("engine `fit`, pack streamed from the host", f"{best['streaming']:,.0f} images/s"),
                 ("resident / streaming", f"{best['resident'] / best['streaming']:.2f}x")]
        known_peaks = [x for x in peaks if x is not None]
        figures["gpu_memory_peak_mb"] = max(known_peaks) if known_peaks else None
        rows.append(("peak device memory of an epoch (`gpu_memory_peak_mb`)",
                     f"{max(known_peaks):,.0f} MB" if known_peaks else "CPU: none"))

        # 3. predict and 4. Grad-CAM, with the checkpoint the engine wrote.
        predictor = Predictor.from_checkpoint(Path(tmp) / "resident0" / "best.pt", device=str(device))
        png = png_of(images[0])
        batch, n = images[:case["predict_batch"]], case["predict_batch"]
        single = timed(lambda: predictor.predict(png), case["calls"], device=device)
        many = timed(lambda: predictor.probabilities(batch), case["calls"], device=device)
        cam = timed(lambda: predictor.explain(images[:1]), case["calls"], device=device)  # pixels from the pack
        cams = timed(lambda: predictor.explain(batch), max(3, case["calls"] // 10), device=device)
        figures["predict_ms"] = {"p50": round(p(single, 50), 3), "p99": round(p(single, 99), 3),
                                 f"batch{n}_p50": round(p(many, 50), 3)}
        figures["gradcam_ms"] = {"p50": round(p(cam, 50), 3), "p99": round(p(cam, 99), 3),
                                 f"batch{n}_p50": round(p(cams, 50), 3)}
        rows += [("`Predictor.predict`, one PNG: p50 / p99",
                  f"{p(single, 50):.2f} / {p(single, 99):.2f} ms"),
                 (f"`Predictor.probabilities`, batch of {n}: p50", f"{p(many, 50):.2f} ms"),
                 ("Grad-CAM `Predictor.explain`, one image: p50 / p99", f"{p(cam, 50):.2f} / {p(cam, 99):.2f} ms"),
                 (f"Grad-CAM, batch of {n}: p50", f"{p(cams, 50):.2f} ms")]

    # 5. What the workers report, read by the workers' own code.
    gpus = gpu_readings()
    figures["nvml"] = gpus
    if not gpus:
        rows.append(("NVML (the workers' status)", "no NVIDIA GPU seen: the workers say CPU"))
    for g in gpus:
        rows.append((f"NVML GPU {g['index']}: {g['name']}",
                     f"{g['utilization']} % busy, {g['memory_used_mb']:,.0f} of {g['memory_total_mb']:,.0f} MB, "
                     f"{g['temperature_c']} °C"))
    figures["seconds"] = round(time.perf_counter() - started, 1)

    print(f"device {figures['device']}; torch {torch.__version__}; Python {platform.python_version()}; "
          f"code {figures['code']}; {figures['seconds']} s in all{' (smoke: tiny sizes)' if args.smoke else ''}")
    print()
    print("| check | figure |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
