"""Decoding and resizing of one image: the single definition of the pixel preprocessing.

Packing a dataset and predicting with a checkpoint both go through `load_array`, so a model sees
at inference exactly the pixels it was trained on.
"""
from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageError

# Formats Pillow may open. Anything else (SVG, PSD, EPS, ...) is refused before a decoder runs.
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF")
RESIZE_MODES = ("squash", "crop", "fill")
# Beyond this many pixels an image is treated as a decompression bomb (about 16k x 16k). Pillow's
# own DecompressionBombWarning (turned into an error below) usually fires first, at ~89 Mpx; this
# bound still holds if some other code raises or disables Image.MAX_IMAGE_PIXELS.
MAX_PIXELS = 268_000_000
GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
# EXIF orientations that swap width and height (90 and 270 degree rotations, transposes).
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112
THUMB_MAX = 64  # gallery thumbnails are min(image_size, THUMB_MAX) pixels square


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # oriented, first frame, original mode (maybe reduced by JPEG draft)
    format: str
    original_size: tuple[int, int]  # (width, height) as a person sees it: EXIF orientation applied
    original_mode: str


def open_image(source: bytes | BinaryIO, *, draft_size: int | None = None) -> Decoded:
    """Open, verify and orient an image from bytes or a binary file.

    `draft_size` lets the JPEG decoder scale down by a power of two while decoding, which is far
    cheaper than decoding in full and resizing; the result stays at least draft_size on both
    sides, and the final resize still happens in `to_array`.
    """
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp, formats=ALLOWED_FORMATS)
            fmt = img.format or "?"
            original_mode = img.mode
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"image of {width}x{height} pixels is too large to be safe")
            if draft_size and fmt in ("JPEG", "MPO"):  # MPO: a camera's JPEG with extra frames
                img.draft(img.mode, (draft_size, draft_size))
            img.load()
            # Read after load: a PNG keeps its EXIF after the pixels, and loading is needed anyway.
            orientation = _orientation(img)
            if orientation in _SWAPPING_ORIENTATIONS:
                width, height = height, width
            if orientation != 1:  # exif_transpose copies even an upright image; skip the copy
                img = ImageOps.exif_transpose(img)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError("image is too large to be safe (a decompression bomb)") from None
        except Image.UnidentifiedImageError:
            raise ImageError(
                "not an image in an accepted format (JPEG, PNG, BMP, GIF, WebP, TIFF)"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            raise ImageError(f"image is truncated or corrupt ({_short(exc)})") from None
    if img.width < 1 or img.height < 1:
        raise ImageError("image has no pixels")
    return Decoded(image=img, format=fmt, original_size=(width, height), original_mode=original_mode)


def is_grayscale(img: Image.Image) -> bool:
    """True when the image carries no colour: a grayscale mode, or RGB(A)/palette with equal channels.

    Exact over every pixel: colour `auto` must not drop the colour of an image that has a little.
    """
    if img.mode in GRAYSCALE_MODES:
        return True
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    if img.mode not in ("RGB", "RGBA"):
        return False
    arr = np.asarray(img)
    return bool(np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]))


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Convert to 'L' (1 channel) or 'RGB' (3); transparency is flattened onto black."""
    if img.mode in ("P", "PA") or "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _scale_wide_grayscale(img)
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)


def resize(img: Image.Image, size: int, mode: str) -> Image.Image:
    """Resize to size x size: `squash` stretches, `crop` keeps the centre, `fill` pads with black."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}")
    if img.size == (size, size):
        return img
    if mode == "squash":
        return img.resize((size, size), Image.Resampling.BILINEAR)
    if mode == "crop":
        return ImageOps.fit(img, (size, size), Image.Resampling.BILINEAR)
    return ImageOps.pad(img, (size, size), Image.Resampling.BILINEAR, color=0)


def to_image(img: Image.Image, *, size: int, resize_mode: str, channels: int) -> Image.Image:
    """The packed pixels as a size x size 'L' or 'RGB' image."""
    return resize(to_channels(img, channels), size, resize_mode)


def to_array(img: Image.Image, *, size: int, resize_mode: str, channels: int) -> np.ndarray:
    """An H x W x C uint8 array, exactly as stored in a pack."""
    return as_array(to_image(img, size=size, resize_mode=resize_mode, channels=channels))


def as_array(img: Image.Image) -> np.ndarray:
    """H x W x C uint8 of an 'L' or 'RGB' image (frombuffer: half the cost of np.asarray on small images)."""
    if img.mode not in ("L", "RGB"):
        arr = np.asarray(img, dtype=np.uint8)
        return arr[:, :, None] if arr.ndim == 2 else arr
    channels = 1 if img.mode == "L" else 3
    return np.frombuffer(img.tobytes(), dtype=np.uint8).reshape(img.height, img.width, channels)


def load_array(source: bytes | BinaryIO, *, size: int, resize_mode: str, channels: int) -> np.ndarray:
    """Decode and preprocess one image the way packing does."""
    decoded = open_image(source, draft_size=size)
    return to_array(decoded.image, size=size, resize_mode=resize_mode, channels=channels)


def thumb_size(image_size: int) -> int:
    return min(int(image_size), THUMB_MAX)


def thumbnail(image: np.ndarray | Image.Image, *, size: int) -> np.ndarray:
    """A size x size x C thumbnail of a packed array or image (the same pixels when already that size)."""
    if isinstance(image, np.ndarray):
        if image.shape[0] == size and image.shape[1] == size:
            return image
        image = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    return as_array(thumbnail_image(image, size=size))


def thumbnail_image(img: Image.Image, *, size: int) -> Image.Image:
    # An integer reduce first, then a box filter: the same box average at a third of the cost.
    factor = min(img.width, img.height) // size
    if factor >= 2:
        img = img.reduce(factor)
    return img if img.size == (size, size) else img.resize((size, size), Image.Resampling.BOX)


def dhash(image: np.ndarray | Image.Image) -> int:
    """64-bit difference hash of one image or H x W x C array (see `dhashes`)."""
    if isinstance(image, Image.Image):
        image = as_array(image if image.mode in ("L", "RGB") else image.convert("RGB"))
    return int(dhashes(image[None])[0])


def dhashes(images: np.ndarray) -> np.ndarray:
    """64-bit difference hashes of N x H x W x C uint8 images: near-identical pictures differ in few bits.

    Each bit says whether a cell of the 9 x 8 box-averaged grayscale reduction is brighter than
    its left neighbour, which survives re-encoding, resizing and small edits of the same picture.
    Vectorised over a batch (two small matrix products), so packing pays microseconds per image;
    packing hashes the thumbnails.
    """
    n, h, w, c = images.shape
    luma = np.array([1.0] if c == 1 else [0.299, 0.587, 0.114], dtype=np.float32)
    # Box columns and grayscale folded into one (W*C) x 9 matrix: one BLAS product per side.
    columns = (box_matrix(w, 9)[:, :, None] * luma[None, None, :]).reshape(9, w * c)
    flat = images.reshape(n, h, w * c).astype(np.float32)
    cells = box_matrix(h, 8) @ (flat @ columns.T)  # n x 8 x 9
    # The margin keeps rounding noise in flat regions from flipping bits at random.
    bits = cells[:, :, 1:] > cells[:, :, :-1] + 0.5
    return np.packbits(bits.reshape(n, 64), axis=1).view(">u8").ravel().astype(np.uint64)


def box_matrix(n: int, m: int) -> np.ndarray:
    """m x n weights averaging n samples into m equal boxes (partial pixels weighted by overlap)."""
    edges = np.arange(m + 1) * (n / m)
    left, right = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n)[None, :]
    overlap = np.clip(np.minimum(right, pixel + 1) - np.maximum(left, pixel), 0, None)
    return (overlap / (n / m)).astype(np.float32)


def _orientation(img: Image.Image) -> int:
    # Only TIFF keeps the tag among its own; other formats carry an EXIF block in `info` when they
    # have one at all, and most images have none: skip building an empty Exif for them.
    if img.format != "TIFF" and "exif" not in img.info:
        return 1
    try:
        return int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block must not make the picture unreadable
        return 1


def _scale_wide_grayscale(img: Image.Image) -> Image.Image:
    arr = np.asarray(img, dtype=np.float64)
    top = arr.max() if arr.size else 0
    scaled = arr * (255.0 / top) if top > 255 else arr
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
