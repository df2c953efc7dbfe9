"""Versions: what adding images to a dataset costs as a new version, against ingesting it all again.

    .venv/bin/python bench/versions.py                 # 20,000 images + 200 added (a few minutes on 2 cores)
    .venv/bin/python bench/versions.py --images 2000 --added 20 --size 32   # a quick look

A version-1 archive of --images JPEG photos (--size px square, RGB, smooth random pictures in
--classes class folders, quality 90) is packed with `build_pack` as an upload is (every core). Then
an archive of --added new photos makes version 2 with `derive_pack`, the product's own path for a new
version (only the added images decode; the parent's pixels are hard-linked), and the same 20,200
images are packed again from one archive with `build_pack`, as a new upload would be.

For the design choice (an index over the parent's rows rather than a copy of them), the parent's
image and thumbnail files are also copied and synced, which is what a copying version would add.

"Bytes written" are the bytes of the files the new pack owns: a file that is a hard link to an older
pack's (same inode) is not counted. Prints, never asserts: both times and both byte counts, the
version's share of each against the goal (at most 5 % of both), and the images each decoded.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.engine.ingest.pipeline import PackOptions, build_pack  # noqa: E402
from workers.engine.ingest.versions import derive_pack  # noqa: E402

GOAL = 0.05


def photo(seed: int, size: int) -> bytes:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def write_archive(path: Path, seeds: range, *, size: int, classes: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for seed in seeds:
            archive.writestr(f"class{seed % classes}/{seed:06d}.jpg", photo(seed, size))
    return path


def owned_bytes(pack: Path, shared_from: list[Path]) -> int:
    """Bytes of the files in `pack` that are not hard links to a file of the packs in `shared_from`."""
    shared = {f.stat().st_ino for old in shared_from for f in old.iterdir()}
    return sum(f.stat().st_size for f in pack.iterdir() if f.stat().st_ino not in shared)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--added", type=int, default=200)
    parser.add_argument("--size", type=int, default=64, help="side of each photo in pixels (packed as is)")
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dlstudio-bench-versions-"))
    try:
        started = time.perf_counter()
        first = write_archive(work / "v1.zip", range(args.images), size=args.size, classes=args.classes)
        added = write_archive(work / "added.zip", range(args.images, args.images + args.added), size=args.size,
                              classes=args.classes)
        whole = write_archive(work / "all.zip", range(args.images + args.added), size=args.size,
                              classes=args.classes)
        print(f"archives: {args.images:,} + {args.added:,} JPEGs of {args.size} px, {args.classes} classes "
              f"({time.perf_counter() - started:.1f} s to make)")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}")

        v1 = build_pack(first, work / "pack-v1", PackOptions())
        print(f"version 1 (full ingest of {args.images:,}): {v1.seconds:.2f} s, "
              f"{owned_bytes(v1.pack_path, []) / 2**20:.1f} MiB, decoded {v1.decoded:,}")

        started = time.perf_counter()
        v2 = derive_pack(v1.pack_path, work / "pack-v2", addition=added, options=PackOptions())
        version_seconds = time.perf_counter() - started
        version_bytes = owned_bytes(v2.pack_path, [v1.pack_path])

        # The other design: a version that copies the parent's pixels instead of indexing them.
        started = time.perf_counter()
        copied = work / "copied"
        copied.mkdir()
        for name in ("images.npy", "thumbs.npy"):
            shutil.copyfile(v1.pack_path / name, copied / name)
            with open(copied / name, "rb+") as written:
                os.fsync(written.fileno())
        copy_seconds, copy_bytes = time.perf_counter() - started, owned_bytes(copied, [])

        again = build_pack(whole, work / "pack-again", PackOptions())
        again_bytes = owned_bytes(again.pack_path, [])
        print(f"version 2 (+{args.added:,} by derive_pack): {version_seconds:.2f} s, {version_bytes / 2**20:.2f} MiB "
              f"written, decoded {v2.decoded:,}, {v2.num_images:,} images")
        print(f"full re-ingest of {again.num_images:,}: {again.seconds:.2f} s, {again_bytes / 2**20:.1f} MiB written, "
              f"decoded {again.decoded:,}")
        print(f"copying the parent's pixels instead (the alternative to sharing them): {copy_seconds:.2f} s, "
              f"{copy_bytes / 2**20:.1f} MiB, before any of the version's own work")
        time_share, byte_share = version_seconds / again.seconds, version_bytes / again_bytes
        print(f"version / re-ingest: time {time_share:.1%}, bytes {byte_share:.1%} (goal: at most {GOAL:.0%} of both: "
              f"{'met' if max(time_share, byte_share) <= GOAL else 'NOT met'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
