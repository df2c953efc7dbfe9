"""How large a pack an upload would make, known before anything is decoded.

A pack stores every image at `image_size`² × channels bytes whatever its size in the archive, so a few
kilobytes of tiny images can become gigabytes. The estimate comes from the listing (how many entries
look like images) and, for the upscale check, from the images' headers: at most `HEAD_BYTES` of each,
read through the source without decoding a pixel. The web request reads the first `headers` images'
headers (a cheap sample); the ingest job reads them all (`headers=None`).
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .archive import Limits, open_source
from .imaging import thumb_size
from .layout import IMAGE_EXTENSIONS

__all__ = ["PackEstimate", "estimate_pack", "upscale_sentence", "UPSCALE_FACTOR"]

HEAD_BYTES = 64 * 1024  # a PNG, GIF, BMP or WebP header is in the first bytes; a JPEG's after its EXIF
HEADER_SAMPLE = 500  # images whose headers the web request reads
AUTO_SIZE = 224  # pipeline's image_size when the images do not all share one size of at most 256
AUTO_SHARED_MAX = 256
# Per image beyond its pixels and thumbnail: label, split, hashes, original size, name (rounded up).
PER_IMAGE_BYTES = 256
PACK_BYTES = 64 * 1024  # statistics, classes, health report
# Enlarging the largest image more than this many times is refused unless the user confirms it.
UPSCALE_FACTOR = 4
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass
class PackEstimate:
    images: int  # entries that look like images (an upper bound: some may not decode)
    image_size: int
    channels: int
    bytes: int  # the pack these images would make
    headers_read: int  # images whose size the header told
    largest_side: int  # the largest side among those (0 when none)
    complete: bool  # every image's header was read: `largest_side` is the archive's


def _looks_like_image(name: str) -> bool:
    dot = name.rfind(".")
    return dot <= 0 or name[dot:].lower() in IMAGE_EXTENSIONS


def _header(data: bytes) -> tuple[int, int, str] | None:
    """(width, height, mode) from an image's first bytes, or None when they do not tell."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return image.width, image.height, image.mode
    except Exception:  # noqa: BLE001 - a header Pillow cannot read leaves the size unknown, nothing more
        return None


def pack_bytes(count: int, image_size: int, channels: int) -> int:
    thumb = thumb_size(image_size)
    return count * ((image_size ** 2 + thumb ** 2) * channels + PER_IMAGE_BYTES) + PACK_BYTES


def estimate_pack(source: str | Path, *, image_size: int | None, color: str = "auto", limits: Limits | None = None,
                  headers: int | None = HEADER_SAMPLE, channels: int | None = None) -> PackEstimate:
    """The pack `source` would make at `image_size` (None: automatic) and `color` ("auto", "grayscale",
    "rgb"; or `channels` when a parent pack fixed them). Lists the archive within `limits` (raising
    IngestError like an ingest would) and reads the headers of the first `headers` images (None: all)."""
    sizes: list[tuple[int, int]] = []
    modes: set[str] = set()
    with open_source(source, limits=limits or Limits()) as src:
        images = [e for e in src.entries if e.skip is None and e.parts and _looks_like_image(e.parts[-1])]
        wanted = images if headers is None else images[:headers]
        for entry in wanted:
            found = _header(src.head(entry, HEAD_BYTES))
            if found is not None:
                sizes.append(found[:2])
                modes.add(found[2])
    complete = len(sizes) == len(images)
    if image_size is None:  # the pipeline's rule, on what the headers show
        shared = {w for w, h in sizes if w == h}
        size = shared.pop() if complete and len(set(sizes)) == 1 and len(shared) == 1 else AUTO_SIZE
        image_size = size if 4 <= size <= AUTO_SHARED_MAX else AUTO_SIZE
    if channels is None:
        gray = color == "grayscale" or (color == "auto" and complete and modes and modes <= GRAY_MODES)
        channels = 1 if gray else 3
    return PackEstimate(images=len(images), image_size=image_size, channels=channels,
                        bytes=pack_bytes(len(images), image_size, channels), headers_read=len(sizes),
                        largest_side=max((max(s) for s in sizes), default=0), complete=complete)


def upscale_sentence(estimate: PackEstimate, image_size: int | None) -> str | None:
    """The refusal when `image_size` would enlarge every image of the archive more than UPSCALE_FACTOR
    times (known only when every header was read); None otherwise."""
    largest = estimate.largest_side
    if image_size is None or not estimate.complete or not largest or largest * UPSCALE_FACTOR >= image_size:
        return None
    return (f"The largest image in this archive is {largest} px on its longest side, and image_size {image_size} "
            f"would enlarge every image more than {UPSCALE_FACTOR} times into a pack of about "
            f"{size_words(estimate.bytes)}; choose an image_size of at most {largest * UPSCALE_FACTOR}, "
            'or confirm the enlargement (allow_upscale; on the form, "Enlarge small images").')


def size_words(n: int) -> str:
    """Bytes for people, in decimal units like the quota (DLSTUDIO_TEAM_QUOTA_GB)."""
    if n >= 999_500_000:  # not "1000 MB"
        return f"{n / 10**9:.1f} GB"
    if n >= 10**6:
        return f"{n / 10**6:.0f} MB"
    return f"{max(n, 0) / 10**3:.0f} KB"
