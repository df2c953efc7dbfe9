"""The engine against a bare hand-written PyTorch loop: same network, same data, same steps.

    .venv/bin/python bench/engine_vs_bare.py            # the CPU case of issue 4 (or the GPU case on a GPU)
    .venv/bin/python bench/engine_vs_bare.py --quick    # a smoke run in seconds

It also times `Predictor.predict` on one PNG with the checkpoint the engine wrote.

CPU (default without a GPU): smallcnn on MNIST-shaped data (28x28 grayscale, 10 classes), Adam,
batch 128. GPU: resnet18 on a 50,000-image 32x32 RGB pack, the bare loop in bf16 and channels_last.
The bare loop holds the data as one normalised float tensor on the device and does only
forward, loss, backward, step; the engine runs `fit` as the web app does (uint8 pack on the device,
normalisation per batch, metrics, a checkpoint every epoch). Rounds alternate bare and engine so a
drifting or shared machine affects both; the best and the median of the steady epochs (all but
the first of a round) are reported. It prints figures; it never asserts.
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
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CODE = ("workers/engine", "bench")  # what "+uncommitted" looks at

from machine import code_version, device_name  # noqa: E402
from workers.engine import Predictor, build_model, fit  # noqa: E402
from workers.engine.ingest.pack_writer import write_pack  # noqa: E402


def synthetic(n: int, size: int, channels: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is a bright square at a class-specific place, under noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.integers(0, 100, (n, size, size, channels), dtype=np.uint8)
    cell = size // 4
    for c in range(classes):
        y, x = divmod(c % 16, 4)
        images[labels == c, y * cell:(y + 1) * cell, x * cell:(x + 1) * cell] += 150
    return images, labels


def bare_loop(*, images: np.ndarray, labels: np.ndarray, config: dict, device: torch.device, epochs: int,
              amp: bool) -> list[float]:
    """What one writes by hand: images/s of each epoch."""
    torch.manual_seed(config["seed"])
    channels_last = device.type == "cuda"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255)
    x = ((x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)).contiguous(memory_format=fmt)
    y = torch.from_numpy(labels).to(device)
    model = build_model(config, num_classes=int(labels.max()) + 1, channels=images.shape[3],
                        image_size=images.shape[1]).to(device, memory_format=fmt)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    batch_size, steps = config["batch_size"], len(x) // config["batch_size"]
    rates = []
    for _ in range(epochs):
        _sync(device)
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), device=device)
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _sync(device)
        rates.append(steps * batch_size / (time.perf_counter() - started))
    return rates


def engine_run(*, pack, config: dict, out_dir: Path, resident: bool | None = None,
               on_epoch=None) -> tuple[list[float], float]:
    """The engine's own images/s of each epoch, and the wall time of the whole `fit` call. `resident`
    as `fit` takes it (None: on the device when the pack fits); `on_epoch` also gets each epoch's metrics."""
    rates: list[float] = []

    def epoch_done(metrics: dict) -> None:
        rates.append(metrics["images_per_s"])
        if on_epoch:
            on_epoch(metrics)

    started = time.perf_counter()
    result = fit(pack=pack, config=config, out_dir=out_dir, on_epoch=epoch_done, resident=resident)
    wall = time.perf_counter() - started
    if result.outcome != "completed":
        sys.exit(f"the engine run ended {result.outcome}: {result.error}")
    return rates, wall


def predictor_latency(*, checkpoint: Path, image: np.ndarray, device: torch.device, calls: int = 200) -> float:
    """Milliseconds of one `Predictor.predict` call, as the web app makes it per request."""
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(2) if image.shape[2] == 1 else image).save(buffer, format="PNG")
    predictor = Predictor.from_checkpoint(checkpoint, device=str(device))
    for _ in range(20):  # warm-up
        predictor.predict(buffer.getvalue())
    started = time.perf_counter()
    for _ in range(calls):
        predictor.predict(buffer.getvalue())
    return 1000 * (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="a few seconds, to check the script runs")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    gpu = device.type == "cuda"
    if gpu:
        case = {"arch": "resnet18", "size": 32, "channels": 3, "classes": 10, "images": 50_000, "epochs": 3,
                "batch_size": 512}
    else:
        case = {"arch": "smallcnn", "size": 28, "channels": 1, "classes": 10, "images": 8_192, "epochs": 3,
                "batch_size": 128}
    if args.quick:
        case.update(images=1024, epochs=2)
    case["images"] = args.images or case["images"]
    case["epochs"] = args.epochs or case["epochs"]
    config = {"arch": case["arch"], "batch_size": case["batch_size"], "epochs": case["epochs"], "lr": 1e-3,
              "optimizer": "adam", "seed": 0, "device": str(device), "amp": "auto"}
    amp = gpu and torch.cuda.is_bf16_supported()
    if gpu:
        torch.backends.cudnn.benchmark = True

    images, labels = synthetic(case["images"], case["size"], case["channels"], case["classes"])
    print(f"code {code_version(*CODE)}  torch {torch.__version__}  python {platform.python_version()}")
    print(f"device {device_name(device)}  threads {torch.get_num_threads()}")
    print(f"case: {case['arch']} on {case['images']} images {case['size']}x{case['size']}x{case['channels']}, "
          f"batch {case['batch_size']}, {case['epochs']} epochs x {args.rounds} rounds, bf16 {amp}")
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        # Everything in the train split: both sides train on the same images and neither evaluates.
        pack = write_pack(Path(tmp) / "pack", images, labels, np.zeros(len(labels), np.int8),
                          [str(c) for c in range(case["classes"])])
        bare_rates, engine_rates, bare_walls, engine_walls = [], [], [], []
        for r in range(args.rounds):
            started = time.perf_counter()
            rates = bare_loop(images=images, labels=labels, config=config, device=device,
                              epochs=case["epochs"], amp=amp)
            bare_walls.append(time.perf_counter() - started)
            bare_rates += rates[1:]  # the first epoch pays for warm-up (allocator, cuDNN autotuning)
            rates, wall = engine_run(pack=pack, config=config, out_dir=Path(tmp) / f"run{r}")
            engine_walls.append(wall)
            engine_rates += rates[1:]
            print(f"round {r + 1}: bare {_fmt(bare_rates[-1])} img/s, engine {_fmt(engine_rates[-1])} img/s")
        predict_ms = predictor_latency(checkpoint=Path(tmp) / "run0" / "best.pt", image=images[0], device=device)
    # Best of the rounds, as timeit does: other processes only ever make a round slower.
    bare, engine = max(bare_rates), max(engine_rates)
    bare_median, engine_median = statistics.median(bare_rates), statistics.median(engine_rates)
    bare_wall, engine_wall = min(bare_walls), min(engine_walls)
    print(f"bare loop   {_fmt(bare)} images/s best, {_fmt(bare_median)} median   "
          f"{bare_wall:.2f} s per run (set-up included)")
    print(f"engine fit  {_fmt(engine)} images/s best, {_fmt(engine_median)} median   "
          f"{engine_wall:.2f} s per run (set-up, metrics, a checkpoint per epoch included)")
    print(f"ratio engine/bare: {engine / bare:.3f} best   {engine_median / bare_median:.3f} median   "
          f"{bare_wall / engine_wall:.3f} whole run")
    print(f"predictor: {predict_ms:.2f} ms per image (PNG bytes in, top-5 out, one at a time)")
    print(json.dumps({"device": device_name(device), "case": case, "rounds": args.rounds,
                      "predict_ms": round(predict_ms, 3),
                      "bare_images_per_s": round(bare, 1), "engine_images_per_s": round(engine, 1),
                      "ratio": round(engine / bare, 4), "ratio_median": round(engine_median / bare_median, 4),
                      "ratio_whole_run": round(bare_wall / engine_wall, 4), "code": code_version(*CODE)}))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fmt(rate: float) -> str:
    return f"{rate:,.0f}"


if __name__ == "__main__":
    main()
