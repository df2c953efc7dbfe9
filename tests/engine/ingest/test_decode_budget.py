"""Decoding within a budget: an image's cost is read from its header, a hostile one is refused
before a pixel is decoded, a large one is reduced in strips, and peak memory stays under 64 MB.

Memory is the peak resident size (VmHWM) of a fresh subprocess that has imported the engine and
read the file before decoding: Pillow's buffers are invisible to tracemalloc.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engine.errors import ImageError
from workers.engine.ingest import decode_budget, imaging

ROOT = Path(__file__).resolve().parents[3]
LIMIT = 64 * 10**6  # bytes: the budget a decode must stay under, whatever the file

CHILD = r"""
import json, re, sys
def status(key):
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024
import numpy as np
from workers.engine.ingest import imaging
data = open(sys.argv[1], "rb").read()
reset = True
try:
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
except OSError:
    reset = False
base = status("VmRSS") if reset else status("VmHWM")
try:
    arr = imaging.load_array(data, size=int(sys.argv[2]), resize_mode="squash", channels=1)
    np.save(sys.argv[3], arr)
    error = None
except imaging.ImageError as exc:
    error = str(exc)
print(json.dumps({"peak": status("VmHWM") - base, "error": error}))
"""


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def decode_in_child(tmp_path: Path, data: bytes, size: int = 224) -> tuple[int, str | None, np.ndarray | None]:
    """(peak bytes above the resting process, the refusal or None, the decoded array or None)."""
    source, result = tmp_path / "image", tmp_path / "array.npy"
    source.write_bytes(data)
    out = subprocess.run([sys.executable, "-c", CHILD, str(source), str(size), str(result)], cwd=ROOT,
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    facts = json.loads(out.stdout)
    return facts["peak"], facts["error"], np.load(result) if result.exists() else None


def gradient(side: int, dtype, top: float) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, side)
    return ((ramp[None, :] * 0.7 + ramp[:, None] * 0.3) * top).astype(dtype)


@pytest.mark.parametrize("name,make", [
    ("a 9400x9400 16-bit PNG of zeros", lambda: encode(Image.new("I;16", (9400, 9400)))),
    ("a 9400x9400 float TIFF of zeros", lambda: encode(Image.new("F", (9400, 9400)), "TIFF",
                                                       compression="tiff_deflate")),
    ("a 9400x9400 progressive JPEG", lambda: encode(Image.new("RGB", (9400, 9400)), "JPEG", progressive=True)),
])
def test_a_small_file_that_decodes_to_gigabytes_is_refused_from_its_header(tmp_path, name, make):
    data = make()
    assert len(data) < 2**20
    peak, error, _ = decode_in_child(tmp_path, data)
    assert peak < LIMIT
    assert error is not None and "9400x9400" in error and "MiB one image may use" in error
    assert "million pixels" in error  # what to change


@pytest.mark.parametrize("name,big,small", [
    ("16-bit PNG", lambda: encode(Image.fromarray(gradient(4800, np.uint16, 60000))),
     lambda: encode(Image.fromarray(gradient(448, np.uint16, 60000)))),
    ("float TIFF", lambda: encode(Image.fromarray(gradient(2400, np.float32, 900.0)), "TIFF",
                                  compression="tiff_deflate"),
     lambda: encode(Image.fromarray(gradient(448, np.float32, 900.0)), "TIFF")),
])
def test_a_large_wide_image_decodes_within_the_budget_to_what_a_small_copy_gives(tmp_path, name, big, small):
    peak, error, array = decode_in_child(tmp_path, big())
    assert error is None and peak < LIMIT
    expected = imaging.load_array(small(), size=224, resize_mode="squash", channels=1)
    assert array.shape == expected.shape == (224, 224, 1)
    assert np.abs(array.astype(int) - expected.astype(int)).max() <= 2


def test_the_cost_comes_from_the_header_and_the_refusal_names_the_limit():
    data = encode(Image.new("I;16", (9400, 9400)))
    sentence = r"9400x9400 pixels \(I;16 PNG\) would take \d+ MiB to decode, over the 60 MiB one image may use"
    with pytest.raises(ImageError, match=sentence):
        imaging.open_image(data, draft_size=224)
    with pytest.raises(ImageError, match=sentence):
        imaging.load_array(data, size=224, resize_mode="squash", channels=1)
    assert imaging.image_pixels(io.BytesIO(data)) == 9400 * 9400
    jpeg = io.BytesIO(encode(Image.new("RGB", (4000, 3000)), "JPEG"))
    jpeg.seek(5)
    assert imaging.image_pixels(jpeg, draft_size=224) == 500 * 375 and jpeg.tell() == 5  # drafted by 8


def test_only_images_over_the_threshold_are_reduced_so_ordinary_ones_keep_their_pixels():
    assert decode_budget.reduction_factor((2000, 2000), 224) == 1  # 4 Mpx: decoded and converted as ever
    assert decode_budget.reduction_factor((4800, 4800), 224) == 10  # to 480: twice the target, bilinear after
    assert decode_budget.reduction_factor((4800, 3000), 1024) == 2  # under four times: to just above the target
    assert decode_budget.reduction_factor((4800, 4800), None) == 1
    decoded = imaging.open_image(encode(Image.fromarray(gradient(4800, np.uint16, 60000))), draft_size=224)
    assert decoded.image.size == (480, 480) and decoded.image.mode == "L"
    assert decoded.original_size == (4800, 4800) and decoded.original_mode == "I;16" and decoded.is_grayscale()


@pytest.mark.parametrize("mode", ["RGBA", "P", "I;16", "F", "LA", "1", "CMYK"])
def test_strip_by_strip_conversion_gives_exactly_the_whole_image_conversion(monkeypatch, mode):
    rng = np.random.default_rng(0)
    if mode in ("I;16", "F"):
        img = Image.fromarray(rng.integers(0, 5000, (300, 257)).astype(np.uint16 if mode == "I;16" else np.float32))
    else:
        img = Image.fromarray(rng.integers(0, 256, (300, 257, 4), dtype=np.uint8), "RGBA").convert(mode)
        if mode == "P":
            img.info["transparency"] = 3
    whole = {channels: imaging.to_channels(img, channels) for channels in (1, 3)}
    monkeypatch.setattr(imaging, "STRIP_PIXELS", 1000)  # 3 rows a strip: 100 strips
    for channels in (1, 3):
        assert np.array_equal(np.asarray(imaging.to_channels(img, channels)), np.asarray(whole[channels]))


def test_grayscale_detection_stays_exact_for_a_reduced_image_with_one_coloured_pixel():
    gray = gradient(3000, np.uint8, 255)
    rgb = np.stack([gray] * 3, axis=-1)
    assert imaging.open_image(encode(Image.fromarray(rgb)), draft_size=64).is_grayscale()
    rgb[2900, 17, 2] ^= 1  # one level of blue in one pixel: averaged away by the reduction
    decoded = imaging.open_image(encode(Image.fromarray(rgb)), draft_size=64)
    assert decoded.image.size == (131, 131) and imaging.is_grayscale(decoded.image)
    assert not decoded.is_grayscale()
    assert not imaging.is_grayscale(Image.fromarray(rgb))  # and the strip-by-strip check of a whole image


def test_a_large_transparent_palette_image_is_reduced_flattened_onto_black():
    arr = np.zeros((4400, 4400), dtype=np.uint8)
    arr[:, 2200:] = 1
    img = Image.fromarray(arr, "L").convert("P")
    img.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    data = encode(img, transparency=1)  # the right half white but fully transparent: black once flattened
    array = imaging.load_array(data, size=32, resize_mode="squash", channels=3)
    assert array.shape == (32, 32, 3) and array.max() == 0
    opaque = imaging.load_array(encode(img), size=32, resize_mode="squash", channels=3)
    assert opaque[:, :15].max() == 0 and opaque[:, 17:].min() == 255


def test_a_reduced_image_is_still_turned_the_way_its_exif_says():
    arr = np.zeros((1500, 3000, 3), dtype=np.uint8)
    arr[:, :1500, 0], arr[:, 1500:, 2] = 255, 255  # red left half, blue right half
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90 degrees clockwise
    decoded = imaging.open_image(encode(Image.fromarray(arr), exif=exif.tobytes()), draft_size=64)
    assert decoded.original_size == (1500, 3000) and decoded.image.size == (137, 273)
    shown = np.asarray(decoded.image.convert("RGB")).astype(int)
    assert shown[10, 60, 0] == 255 and shown[10, 60, 2] == 0  # the left half is now on top
    assert shown[260, 60, 2] == 255 and shown[260, 60, 0] == 0


def test_packing_skips_an_image_over_the_budget_with_its_sentence_and_reduces_a_large_one(tmp_path):
    from workers.engine.ingest.pipeline import PackOptions, build_pack

    from .test_pipeline import class_entries, write_zip

    entries = class_entries(per_class=4, size=(40, 40))
    entries["cat/flat.png"] = encode(Image.new("I;16", (9400, 9400)))
    entries["dog/wide.png"] = encode(Image.fromarray(gradient(4800, np.uint16, 60000)))
    archive = write_zip(tmp_path / "upload.zip", entries)
    report = build_pack(archive, tmp_path / "pack", PackOptions(image_size=32, color="grayscale"), processes=1)
    listed = {row["name"]: row["reason"] for row in report.health["corrupt"]}
    assert list(listed) == ["cat/flat.png"] and "over the 60 MiB one image may use" in listed["cat/flat.png"]
    assert report.num_images == 13  # the large 16-bit gradient is in, reduced before it was scaled
