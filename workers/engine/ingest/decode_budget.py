"""How much memory decoding one image takes, estimated from its header before a pixel is decoded, and
the budget it must fit (docs/PERFORMANCE.md, "Decoding within a budget").

Predicting, explaining and packing all decode through `imaging.open_image`, which asks `check_budget`
first: a web thread or a decode worker never holds more than DECODE_BUDGET for an image, whatever its
file says.
"""
from __future__ import annotations

import io

from PIL import Image

from ..errors import ImageError

# Peak memory one image may take to decode and reduce; an image whose `decode_cost` is over it is refused.
DECODE_BUDGET = 60 * 2**20  # under 64 MB, with what the estimate leaves out
# Images of more decoded pixels than this are reduced (`Image.reduce`, a box average) toward twice
# the target size before any conversion; smaller ones keep exactly the pixels they always had.
REDUCE_ABOVE = 2**22  # about 2048 x 2048
_FIXED_COST = 4 * 2**20  # the decoder's own tables and buffers, measured
_STRIPS_COST = 6 * 2**20  # a strip, its conversion and (wide modes) its float64 copy


def reduction_factor(size: tuple[int, int], draft_size: int | None) -> int:
    """The integer reduce applied to a decoded image of `size` going to draft_size (1: none).

    Down to twice the target where the image is at least four times larger on both sides (the
    bilinear resize then still averages two pixels each way), else to the target itself."""
    width, height = size
    if not draft_size or width * height <= REDUCE_ABOVE:
        return 1
    factor = min(width, height) // (2 * draft_size)
    return factor if factor >= 2 else max(1, min(width, height) // draft_size)


def decode_cost(img: Image.Image, stored_size: tuple[int, int], factor: int = 1, file_bytes: int = 0) -> int:
    """Peak bytes that decoding `img` (opened, drafted, not loaded) and reducing it by `factor` takes.

    From the header alone. Most of Pillow's decoders write straight into the image; the exceptions
    below were measured (bench/decode.py): libjpeg keeps every DCT coefficient of a progressive
    JPEG (2 bytes a sample, at full size whatever the draft), libtiff one strip or tile (and a copy
    of a file held in memory), the WebP decoder its canvas and a copy of the pixels, BMP's
    run-length decoder a bytearray and a copy.
    After the decode come the reduced image and its conversion (at most 4 bytes a pixel each).
    """
    width, height = img.size
    pixels = width * height
    image = pixels * _pixel_bytes(img.mode)
    extra = 0
    if img.format in ("JPEG", "MPO") and img.info.get("progressive"):
        extra = 2 * stored_size[0] * stored_size[1] * _jpeg_samples(img)
    elif img.format == "TIFF":
        extra = _tiff_buffer(img) + file_bytes
    elif img.format == "WEBP":
        extra = 10 * pixels
    elif img.format == "BMP" and img.tile and img.tile[0][0] == "bmp_rle":
        extra = 3 * image
    reduced = (-(-width // factor)) * (-(-height // factor))
    return _FIXED_COST + image + extra + 8 * reduced + _STRIPS_COST


def check_budget(img: Image.Image, stored_size: tuple[int, int], factor: int, file_bytes: int) -> None:
    cost = decode_cost(img, stored_size, factor, file_bytes)
    if cost <= DECODE_BUDGET:
        return
    width, height = stored_size
    # The cost grows about linearly with the pixels: the most this format and mode may hold.
    room = DECODE_BUDGET - _FIXED_COST - _STRIPS_COST
    most = width * height * room / max(cost - _FIXED_COST - _STRIPS_COST, 1)
    raise ImageError(f"image of {width}x{height} pixels ({img.mode} {img.format}) would take "
                     f"{cost / 2**20:.0f} MiB to decode, over the {DECODE_BUDGET // 2**20} MiB one image may use; "
                     f"send it scaled down to at most {most / 1e6:.1f} million pixels")


def file_length(fp) -> int:
    """The size of an open file, its position kept (never BytesIO.getbuffer: that copies the bytes)."""
    try:
        position = fp.tell()
        end = fp.seek(0, io.SEEK_END)
        fp.seek(position)
        return int(end)
    except (AttributeError, OSError, ValueError):
        return 0


def _pixel_bytes(mode: str) -> int:
    """Bytes a pixel of `mode` takes in Pillow's memory (RGB is stored as four)."""
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4


def _jpeg_samples(img: Image.Image) -> float:
    """Samples per pixel of a JPEG's components, chroma subsampling counted."""
    layers = getattr(img, "layer", None) or []
    if not layers:
        return float(len(img.getbands()))
    h_max, v_max = max(h for _, h, _, _ in layers), max(v for _, _, v, _ in layers)
    return sum(h * v for _, h, v, _ in layers) / (h_max * v_max)


def _tiff_buffer(img: Image.Image) -> int:
    """Bytes of the strip or tile libtiff holds while it decodes into the image."""
    tags = getattr(img, "tag_v2", {})
    width, height = img.size
    bits = tags.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    sample_bytes = max(sum(int(b) for b in bits) / 8, 1) * max(1, tags.get(277, 1) // max(len(bits), 1))
    if tags.get(262) == 6:  # YCbCr is read through libtiff's RGBA interface
        sample_bytes = max(sample_bytes, 4)
    if 322 in tags and 323 in tags:
        return int(int(tags[322]) * int(tags[323]) * sample_bytes)
    rows = min(int(tags.get(278, height)), height)
    return int(rows * width * sample_bytes)
