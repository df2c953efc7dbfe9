"""Fixtures of the engine tests: tiny packs that a small CNN learns in a second, and a real
image archive made from scikit-learn's 8x8 digits."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workers.engine.ingest.pack import Pack
from workers.engine.ingest.pack_writer import write_pack

# Two threads match this machine; the tiny models would not gain from more.
torch.set_num_threads(2)

CLASSES = ["top", "left", "centre"]


def make_images(n: int, *, size: int = 12, channels: int = 1, seed: int = 0,
                classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Noise with a bright bar whose place tells the class: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.integers(0, 80, (n, size, size, channels)).astype(np.uint8)
    third = size // 3
    for i, label in enumerate(labels):
        if label == 0:
            images[i, :third] += 150
        elif label == 1:
            images[i, :, :third] += 150
        elif label == 2:
            images[i, third:2 * third, third:2 * third] += 150
        else:
            images[i, -third:] += 150
    return images, labels


@pytest.fixture
def make_pack(tmp_path):
    counter = iter(range(1000))

    def make(n: int = 240, *, size: int = 12, channels: int = 1, classes: list[str] | None = None,
             split_p=(0.7, 0.15, 0.15), seed: int = 0, extra: dict | None = None) -> Pack:
        classes = classes or CLASSES
        images, labels = make_images(n, size=size, channels=channels, seed=seed, classes=len(classes))
        splits = np.random.default_rng(seed + 1).choice([0, 1, 2], n, p=list(split_p))
        return write_pack(tmp_path / f"pack{next(counter)}", images, labels, splits, classes, extra=extra)

    return make


@pytest.fixture
def tiny_pack(make_pack) -> Pack:
    return make_pack()


def digits_png(image: np.ndarray) -> bytes:
    """One of scikit-learn's digits (0..16 gray levels) as an 8-bit PNG."""
    buffer = io.BytesIO()
    Image.fromarray((image * (255 / 16)).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def digits_zip(tmp_path_factory) -> Path:
    """A real upload: <class>/<image>.png for 40 images of each of the ten digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path_factory.mktemp("digits") / "digits.zip"
    counts = dict.fromkeys(range(10), 0)
    with zipfile.ZipFile(path, "w") as archive:
        for image, target in zip(digits.images, digits.target):
            if counts[target] >= 40:
                continue
            counts[target] += 1
            archive.writestr(f"{target}/{counts[target]:03d}.png", digits_png(image))
    return path
