"""Decoding and resizing of one image: the single definition of the pixel preprocessing.

Packing a dataset and predicting with a checkpoint both go through `load_array`, so a model sees
at inference exactly the pixels it was trained on.
"""
from __future__ import annotations

import contextlib
import io
import struct
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageError
from .decode_budget import check_budget, file_length, reduction_factor

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
_TRANSPOSITIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                   7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}  # as ImageOps.exif_transpose
THUMB_MAX = 64  # gallery thumbnails are min(image_size, THUMB_MAX) pixels square


STRIP_PIXELS = 2**18  # conversions of a large image run in strips of this many pixels
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


@dataclass(frozen=True)
class Decoded:
    # Oriented, first frame. In its original mode unless it was reduced: a JPEG may come smaller by
    # draft, and an image of over REDUCE_ABOVE pixels comes reduced toward twice `draft_size`, as
    # L, LA, RGB or RGBA (`_reduce`).
    image: Image.Image
    format: str
    original_size: tuple[int, int]  # (width, height) as a person sees it: EXIF orientation applied
    original_mode: str
    gray: bool | None = None  # for a reduced image, whether its full-resolution pixels carry no colour

    def is_grayscale(self) -> bool:
        """`is_grayscale` of the image as decoded, exact even when it was reduced."""
        return self.gray if self.gray is not None else is_grayscale(self.image)


def open_image(source: bytes | BinaryIO, *, draft_size: int | None = None) -> Decoded:
    """Open, size-check, verify, reduce and orient an image from bytes or a binary file.

    `draft_size` is the size the image is going to: the JPEG decoder scales down by a power of two
    while decoding, and an image of over REDUCE_ABOVE pixels is box-reduced to about twice
    draft_size (never below it) before any conversion; the final resize still happens in
    `to_array`. Raises ImageError, without decoding, for an image that would take more than
    DECODE_BUDGET to decode.
    """
    with _opening():
        img, fmt, original_mode, (width, height) = _open(source, draft_size)
        factor = reduction_factor(img.size, draft_size)
        check_budget(img, (width, height), factor, file_length(img.fp))
        img.load()
        # Read after load: a PNG keeps its EXIF after the pixels, and loading is needed anyway.
        orientation = _orientation(img)
    gray = None
    if factor > 1:
        img, gray = _reduce(img, factor)
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    if orientation in _TRANSPOSITIONS:  # not exif_transpose: a reduced image no longer carries the tag
        img = img.transpose(_TRANSPOSITIONS[orientation])
    if img.width < 1 or img.height < 1:
        raise ImageError("image has no pixels")
    return Decoded(image=img, format=fmt, original_size=(width, height), original_mode=original_mode, gray=gray)


def image_pixels(source: BinaryIO, *, draft_size: int | None = None) -> int:
    """How many pixels decoding `source` (toward draft_size) makes, read from its header alone.

    The file position is put back where it was. Raises ImageError as `open_image` would.
    """
    start = source.tell()
    try:
        with _opening():
            img, _, _, _ = _open(source, draft_size)
            return img.width * img.height
    finally:
        source.seek(start)


@contextlib.contextmanager
def _opening():
    """Pillow's errors and bomb warnings as ImageError sentences."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
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


def _open(source, draft_size: int | None) -> tuple[Image.Image, str, str, tuple[int, int]]:
    """(the image opened lazily and drafted, its format, its mode, its stored size); nothing decoded."""
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    img = Image.open(fp, formats=ALLOWED_FORMATS)
    fmt = img.format or "?"
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(f"image of {width}x{height} pixels is too large to be safe")
    if width < 1 or height < 1:
        raise ImageError("image has no pixels")
    original_mode = img.mode
    if draft_size and fmt in ("JPEG", "MPO"):  # MPO: a camera's JPEG with extra frames
        img.draft(img.mode, (draft_size, draft_size))
    return img, fmt, original_mode, (width, height)


def _reduce(img: Image.Image, factor: int) -> tuple[Image.Image, bool]:
    """`img` reduced by `factor`, strip by strip, so no conversion ever holds the whole image.

    Each strip is first brought to L, LA, RGB or RGBA exactly as `to_channels` would (a palette
    expanded, wide grayscale scaled by the whole image's maximum), then box-averaged; strips are a
    whole number of boxes high, so the result equals reducing the whole converted image at once.
    Also says whether the full-resolution pixels are gray (`is_grayscale`, exactly)."""
    width, height = img.size
    top = _wide_top(img) if img.mode in WIDE_MODES else None
    rows = max(factor, STRIP_PIXELS // width // factor * factor)
    out, gray = None, True
    for y in range(0, height, rows):
        strip = _flat_mode(img.crop((0, y, width, min(height, y + rows))), top)
        if gray and strip.mode in ("RGB", "RGBA"):
            gray = _equal_channels(strip)
        small = strip.reduce(factor)
        if out is None:
            out = Image.new(small.mode, (-(-width // factor), -(-height // factor)))
        out.paste(small, (0, y // factor))
    return out, gray


def _flat_mode(img: Image.Image, top: float | None) -> Image.Image:
    """`img` in L, LA, RGB or RGBA, converted pixel by pixel as `to_channels` does."""
    if img.mode in ("P", "PA") or "transparency" in img.info:
        return img.convert("RGBA")
    if img.mode in WIDE_MODES:
        return _scale_wide_grayscale(img, top)
    if img.mode == "1":
        return img.convert("L")
    return img if img.mode in ("L", "LA", "RGB", "RGBA") else img.convert("RGB")


def _strips(img: Image.Image):
    """(top row, a copy of the rows from there) covering `img`; the image itself when it is small."""
    if img.width * img.height <= STRIP_PIXELS:
        yield 0, img
        return
    rows = max(1, STRIP_PIXELS // img.width)
    for y in range(0, img.height, rows):
        yield y, img.crop((0, y, img.width, min(img.height, y + rows)))


def _wide_top(img: Image.Image) -> float:
    """The largest value of a wide grayscale image (NaN if any is NaN), strip by strip."""
    tops = [np.asarray(strip).max() for _, strip in _strips(img) if strip.height]
    return float(np.max(np.array(tops, dtype=np.float64))) if tops else 0.0


def _equal_channels(img: Image.Image) -> bool:
    arr = np.asarray(img)
    return bool(np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]))


def is_grayscale(img: Image.Image) -> bool:
    """True when the image carries no colour: a grayscale mode, or RGB(A)/palette with equal channels.

    Exact over every pixel: colour `auto` must not drop the colour of an image that has a little.
    Strip by strip, so a large image is never copied whole.
    """
    if img.mode in GRAYSCALE_MODES:
        return True
    if img.mode not in ("P", "PA", "RGB", "RGBA"):
        return False
    for _, strip in _strips(img):
        if not _equal_channels(strip.convert("RGBA") if strip.mode in ("P", "PA") else strip):
            return False
    return True


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Convert to 'L' (1 channel) or 'RGB' (3); transparency is flattened onto black.

    Every step works pixel by pixel (wide grayscale is scaled by the whole image's maximum), so a
    large image is converted in strips, with the same result and never a whole-image intermediate.
    """
    target = "L" if channels == 1 else "RGB"
    if img.mode == target and "transparency" not in img.info:
        return img
    if img.width * img.height <= 2 * STRIP_PIXELS:
        return _to_channels(img, target, None)
    top = _wide_top(img) if img.mode in WIDE_MODES else None
    out = Image.new(target, img.size)
    for y, strip in _strips(img):
        out.paste(_to_channels(strip, target, top), (0, y))
    return out


def _to_channels(img: Image.Image, target: str, top: float | None) -> Image.Image:
    if img.mode in ("P", "PA") or "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    if img.mode in WIDE_MODES:
        img = _scale_wide_grayscale(img, top)
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


def _scale_wide_grayscale(img: Image.Image, top: float | None = None) -> Image.Image:
    """To L, scaled so the maximum (`top`, the whole image's when `img` is a strip of it) is 255."""
    arr = np.asarray(img, dtype=np.float64)
    if top is None:
        top = arr.max() if arr.size else 0
    scaled = arr * (255.0 / top) if top > 255 else arr
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
