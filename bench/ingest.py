"""Ingest throughput: build_pack against a bare Pillow decode-and-resize loop on all cores.

    PYTHONPATH=. .venv/bin/python bench/ingest.py [--small N] [--large N] [--repeat R]

(a) N 28x28 grayscale PNGs (default 5,000) packed at their own size, and (b) N 640x480 JPEGs
(default 1,000) packed at 224, each read from a folder and from a zip of that folder. The bare
loop is a multiprocessing.Pool (fork) over the same files that opens, decodes (JPEG draft mode
too), converts and resizes each one with Pillow and returns nothing but a checksum: the floor for
any ingest, which also hashes, thumbnails, gathers statistics and writes the pack. Timings include
starting the processes, for both. Runs alternate between the two (the machine's noise hits both
alike) and the best of --repeat is shown. Prints, never asserts.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

# Nothing from workers.engine is imported at module level: spawned decode workers re-import this
# file as their __main__, and they should pay only for what they use.


def make_images(root: Path, *, count: int, size: tuple[int, int], fmt: str, mode: str, classes: int = 10) -> list[Path]:
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(count):
        label = i % classes
        folder = root / f"class_{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        # Smooth shapes plus noise: compresses like a photo or a scanned digit, not like noise.
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(min(w, h) / 8, min(w, h) / 2)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        channels = 1 if mode == "L" else 3
        tint = rng.uniform(60, 255, size=channels)
        pixels = blob[..., None] * tint + rng.normal(0, 12, size=(h, w, channels))
        pixels = np.clip(pixels + (xx / w * 40)[..., None], 0, 255).astype(np.uint8)
        img = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
        path = folder / f"{i:05d}.{fmt.lower().replace('jpeg', 'jpg')}"
        img.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        paths.append(path)
    return paths


def _bare_one(args: tuple[str, int, int]) -> int:
    path, size, channels = args
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("L" if channels == 1 else "RGB", (size, size))
        img = img.convert("L" if channels == 1 else "RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        return int(np.asarray(img)[0, 0].sum())


def bare_loop(paths: list[Path], *, size: int, channels: int, processes: int) -> float:
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        for _ in pool.imap_unordered(_bare_one, [(str(p), size, channels) for p in paths], chunksize=32):
            pass
    return time.perf_counter() - start


def ingest(source: Path, out: Path, *, image_size: int | None) -> tuple[float, object]:
    from workers.engine.ingest.pipeline import PackOptions, build_pack

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    report = build_pack(source, out, PackOptions(image_size=image_size))
    return time.perf_counter() - start, report


def alternate(bare, packers: list, repeat: int) -> tuple[float, list[tuple[float, object]]]:
    """Best bare time and best (time, report) per packer, running them in turn `repeat` times."""
    bare_times, packed = [], [[] for _ in packers]
    for _ in range(repeat):
        bare_times.append(bare())
        for runs, pack in zip(packed, packers):
            runs.append(pack())
    return min(bare_times), [min(runs, key=lambda r: r[0]) for runs in packed]


def version() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout.strip()
        return head.stdout.strip() + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "uncommitted"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=5000)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--start-method", choices=["fork", "spawn"],
                        help="force the decode workers' start method (default: ingest_pool.start_method)")
    args = parser.parse_args()
    if args.start_method:
        from workers.engine.ingest import pool as ingest_pool

        ingest_pool.start_method = lambda: args.start_method
    cores = len(os.sched_getaffinity(0))
    import PIL

    print(f"code {version()}  python {platform.python_version()}  Pillow {PIL.__version__}  "
          f"numpy {np.__version__}  cores {cores}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        tmp = Path(tmp)
        cases = [("(a) 28x28 PNG", "small", args.small, (28, 28), "PNG", "L", None, 28, 1),
                 ("(b) 640x480 JPEG @224", "large", args.large, (640, 480), "JPEG", "RGB", 224, 224, 3)]
        for title, name, count, size, fmt, mode, image_size, bare_size, channels in cases:
            t = time.perf_counter()
            paths = make_images(tmp / name, count=count, size=size, fmt=fmt, mode=mode)
            archive = tmp / f"{name}.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                for p in paths:
                    zf.write(p, p.relative_to(tmp))
            print(f"{title}: generated {count} files in {time.perf_counter() - t:.1f}s")
            bare, ((folder_s, folder_report), (zip_s, zip_report)) = alternate(
                lambda: bare_loop(paths, size=bare_size, channels=channels, processes=cores),
                [lambda: ingest(tmp / name, tmp / f"{name}.pack", image_size=image_size),
                 lambda: ingest(archive, tmp / f"{name}-zip.pack", image_size=image_size)],
                args.repeat)
            rows.append((title + " folder", count, bare, folder_s, folder_report))
            rows.append((title + " zip", count, bare, zip_s, zip_report))
    print()
    from workers.engine.ingest.pool import start_method

    print(f"decode workers: {cores}, started with {start_method()!r}")
    print(f"{'case':32} {'images':>7} {'bare img/s':>11} {'ingest img/s':>13} {'ratio':>6}  pack")
    for title, count, bare, packed, report in rows:
        shape = f"{report.num_images}x{report.image_size}x{report.image_size}x{report.channels}"
        print(f"{title:32} {count:7d} {count / bare:11.0f} {count / packed:13.0f} {bare / packed:6.2f}  {shape}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
