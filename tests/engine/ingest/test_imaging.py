"""Decoding one image: only allow-listed formats, bombs refused, EXIF orientation applied, the
three resize modes, exact grayscale detection and the perceptual hash."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from workers.engine.ingest import imaging
from workers.engine.errors import ImageError


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def blocks(width: int, height: int, colours) -> Image.Image:
    """Vertical bands of the given colours, left to right."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    band = width // len(colours)
    for i, colour in enumerate(colours):
        arr[:, i * band:(i + 1) * band] = colour
    return Image.fromarray(arr)


RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def test_allowed_formats_open_and_others_are_refused():
    img = blocks(12, 12, [RED, BLUE])
    for fmt in ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"):
        assert imaging.open_image(encode(img, fmt)).format == fmt
    for fmt in ("PPM", "ICO", "TGA", "PCX"):
        with pytest.raises(ImageError, match="accepted format"):
            imaging.open_image(encode(img, fmt))


def test_a_png_header_claiming_30000_by_30000_is_refused_before_decoding():
    data = bytearray(encode(Image.new("L", (10, 10))))
    data[16:24] = struct.pack(">II", 30000, 30000)  # IHDR width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # keep the chunk valid
    with pytest.raises(ImageError, match="decompression bomb"):
        imaging.open_image(bytes(data))


def test_a_decompression_bomb_warning_is_an_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600: warned, not yet refused
    with pytest.raises(ImageError, match="decompression bomb"):
        imaging.open_image(encode(Image.new("RGB", (40, 40))))


def test_truncated_and_garbage_files_are_image_errors():
    jpeg = encode(blocks(64, 64, [RED, GREEN]), "JPEG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        imaging.open_image(jpeg[: len(jpeg) // 2])
    with pytest.raises(ImageError, match="accepted format"):
        imaging.open_image(b"hello, I am a text file")
    with pytest.raises(ImageError):
        imaging.open_image(b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_orientation_is_applied_and_the_size_is_reported_as_seen(fmt):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    data = encode(blocks(40, 20, [RED, BLUE]), fmt, exif=exif.tobytes(), quality=95)
    decoded = imaging.open_image(data)
    assert decoded.image.size == (20, 40) and decoded.original_size == (20, 40)
    arr = np.asarray(decoded.image.convert("RGB")).astype(int)
    # The left (red) half of the stored picture is the top half once rotated clockwise.
    assert arr[5, 10, 0] > 200 and arr[5, 10, 2] < 60
    assert arr[35, 10, 2] > 200 and arr[35, 10, 0] < 60


def test_jpeg_draft_decodes_a_big_image_smaller_but_never_below_the_target():
    data = encode(blocks(1024, 768, [RED, GREEN, BLUE, RED]), "JPEG")
    decoded = imaging.open_image(data, draft_size=100)
    assert decoded.original_size == (1024, 768)
    assert 100 <= min(decoded.image.size) and decoded.image.size[0] < 1024
    array = imaging.load_array(data, size=100, resize_mode="squash", channels=3)
    assert array.shape == (100, 100, 3)


def test_squash_stretches_crop_keeps_the_centre_fill_pads_with_black():
    img = blocks(30, 10, [RED, GREEN, BLUE])  # three 10x10 squares
    squash = imaging.to_array(img, size=9, resize_mode="squash", channels=3)
    assert squash.shape == (9, 9, 3)
    assert tuple(squash[4, 1]) == RED and tuple(squash[4, 4]) == GREEN and tuple(squash[4, 7]) == BLUE
    crop = imaging.to_array(img, size=9, resize_mode="crop", channels=3)
    assert (crop[:, 1:-1] == GREEN).all() and (crop[..., 1] > 200).all()  # bilinear edges blend a little
    fill = imaging.to_array(img, size=9, resize_mode="fill", channels=3)
    assert (fill[0] == 0).all() and (fill[-1] == 0).all()  # black bands above and below
    assert tuple(fill[4, 1]) == RED and tuple(fill[4, 7]) == BLUE
    with pytest.raises(ValueError, match="resize_mode"):
        imaging.to_array(img, size=9, resize_mode="stretch", channels=3)


def test_grayscale_detection_is_exact():
    gray = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    rgb = np.stack([gray] * 3, axis=-1)
    assert imaging.is_grayscale(Image.fromarray(gray))
    assert imaging.is_grayscale(Image.fromarray(rgb))
    assert imaging.is_grayscale(Image.fromarray(gray).convert("P"))
    rgb[3, 7, 1] ^= 1  # one pixel, one level of colour
    assert not imaging.is_grayscale(Image.fromarray(rgb))


def test_gray_rgb_packs_to_the_same_single_channel_as_its_luminance():
    gray = np.random.default_rng(1).integers(0, 256, (20, 20), dtype=np.uint8)
    as_rgb = Image.fromarray(np.stack([gray] * 3, axis=-1))
    one = imaging.to_array(as_rgb, size=10, resize_mode="squash", channels=1)
    assert one.shape == (10, 10, 1)
    assert np.array_equal(one, imaging.to_array(Image.fromarray(gray), size=10, resize_mode="squash", channels=1))


def test_transparency_is_flattened_onto_black_and_16_bit_gray_is_scaled():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0], rgba[:2, :, 3], rgba[2:, :, 3] = 255, 0, 255
    arr = imaging.to_array(Image.fromarray(rgba), size=4, resize_mode="squash", channels=3)
    assert (arr[:2] == 0).all() and (arr[2:, :, 0] == 255).all()
    wide = Image.fromarray(np.full((4, 4), 60000, dtype=np.uint16))
    decoded = imaging.open_image(encode(wide))
    assert imaging.is_grayscale(decoded.image)
    assert imaging.to_array(decoded.image, size=4, resize_mode="squash", channels=1).max() == 255


def test_dhash_is_stable_under_resizing_and_tells_pictures_apart():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    base = (np.sin(xx / 7.0) * 60 + np.cos(yy / 5.0) * 60 + 128).astype(np.uint8)
    photo = np.stack([base, base // 2, 255 - base], axis=-1)
    other = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    smaller = imaging.as_array(Image.fromarray(photo).resize((40, 40), Image.Resampling.BILINEAR))
    recoded = imaging.as_array(imaging.open_image(encode(Image.fromarray(photo), "JPEG", quality=70)).image)

    def distance(a, b):
        return bin(imaging.dhash(a) ^ imaging.dhash(b)).count("1")

    assert distance(photo, photo) == 0
    assert distance(photo, smaller) <= 4 and distance(photo, recoded) <= 4
    assert distance(photo, other) > 16
    batch = imaging.dhashes(np.stack([photo, other]))
    assert batch.dtype == np.uint64 and batch.tolist() == [imaging.dhash(photo), imaging.dhash(other)]
    assert imaging.dhash(np.zeros((28, 28, 1), np.uint8)) == imaging.dhash(np.full((28, 28, 1), 200, np.uint8))


def test_thumbnails_are_at_most_64_pixels():
    arr = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    assert imaging.thumb_size(224) == 64 and imaging.thumb_size(28) == 28
    assert imaging.thumbnail(arr, size=64).shape == (64, 64, 3)
    small = arr[:28, :28]
    assert imaging.thumbnail(small, size=28) is small
    flat = np.full((224, 224, 1), 77, dtype=np.uint8)
    assert (imaging.thumbnail(flat, size=64) == 77).all()
