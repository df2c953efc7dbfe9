"""Grad-CAM, filters and activation maps: right shapes for every arch, and heat where the evidence is."""
import numpy as np
import pytest
import torch

from workers.engine import Predictor, build_model, fit
from workers.engine.ingest.pack_writer import write_pack
from workers.engine.serve import explain
from workers.engine.train.archs import ARCHITECTURES

SIZE = 32
CORNER = 10


def corner_images(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise with bright blobs anywhere; only the top-left corner's pattern tells the class: a solid
    square ("solid") or a checkerboard ("checks")."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 90, (n, SIZE, SIZE, 1)).astype(np.uint8)
    checks = (np.indices((CORNER, CORNER)).sum(0) % 2 * 230).astype(np.uint8)
    for i, label in enumerate(labels):
        for _ in range(2):  # distractors outside the corner, the same for both classes
            y, x = rng.integers(CORNER + 1, SIZE - 6, 2)
            images[i, y:y + 6, x:x + 6] = 230
        images[i, :CORNER, :CORNER, 0] = 230 if label == 0 else checks
    return images, labels


@pytest.fixture(scope="module")
def corner_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corner")
    images, labels = corner_images(400)
    splits = np.random.default_rng(1).choice([0, 1, 2], len(labels), p=[0.7, 0.15, 0.15])
    pack = write_pack(folder / "pack", images, labels, splits, ["solid", "checks"])
    result = fit(pack=pack, config={"epochs": 4, "batch_size": 32, "hidden_units": [32], "seed": 3},
                 out_dir=folder / "run")
    assert result.best_val_acc >= 0.9
    return Predictor.from_checkpoint(result.checkpoint, device="cpu")


def test_the_heat_of_a_trained_model_lies_in_the_corner_that_decides_the_class(corner_model):
    images, labels = corner_images(40, seed=7)
    probabilities, heat = corner_model.explain(images)
    assert heat.shape == (40, SIZE, SIZE) and heat.min() >= 0 and heat.max() <= 1
    assert (probabilities.argmax(1) == labels).mean() >= 0.9
    # The deciding pattern fills most of the top-left quarter, and most of the heat is there.
    quarter = heat[:, :SIZE // 2, :SIZE // 2].sum((1, 2)) / heat.sum((1, 2)).clip(1e-9)
    assert np.median(quarter) > 0.5, quarter


def test_a_chosen_class_changes_the_heatmap_and_none_means_the_top_class(corner_model):
    images, _ = corner_images(4, seed=8)
    probabilities, top = corner_model.explain(images)
    _, again = corner_model.explain(images, [None] * 4)
    _, other = corner_model.explain(images, [1 - int(p.argmax()) for p in probabilities])
    np.testing.assert_allclose(top, again, atol=1e-6)
    assert not np.allclose(top, other)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_arch_explains_shows_its_filters_and_its_stages(arch):
    torch.manual_seed(0)
    model = build_model({"arch": arch, "hidden_units": [8]}, num_classes=3, channels=3, image_size=SIZE).eval()
    inputs = torch.randn(2, 3, SIZE, SIZE)
    heat = explain.gradcam(model, inputs, [0, 2])
    assert heat.shape == (2, SIZE, SIZE) and np.isfinite(heat).all() and heat.max() <= 1
    assert explain.cam_layer(model) is not None

    filters = explain.first_conv_filters(model)
    assert filters.shape[1] == 3
    grid = explain.filter_grid(filters)
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3

    stages = explain.stage_activations(model, inputs)
    sizes = [maps.shape[-1] for _, maps in stages]
    assert len(stages) >= 2 and sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    for _, maps in stages:
        picture = explain.channel_grid(maps, explain.top_channels(maps))
        assert picture.dtype == np.uint8 and picture.shape[2] == 3


def test_top_channels_are_the_most_active_ones():
    maps = np.zeros((5, 4, 4), dtype=np.float32)
    maps[3] = 2.0
    maps[1] = 1.0
    assert list(explain.top_channels(maps, top=2)) == [3, 1]


def test_a_cold_map_stays_cold_and_the_overlay_keeps_the_image_there():
    image = np.full((8, 8, 1), 100, dtype=np.uint8)
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[:2, :2] = 1.0
    out = explain.overlay(image, heat)
    assert out.shape == (8, 8, 3) and (out[4:, 4:] == 100).all() and (out[0, 0] != 100).any()
    assert explain.colorize(np.array([[0.0, 1.0]])).tolist() == [[[0, 0, 4], [252, 255, 164]]]


def test_a_grayscale_model_shows_gray_filters():
    model = build_model({"arch": "smallcnn"}, num_classes=2, channels=1, image_size=16)
    grid = explain.filter_grid(explain.first_conv_filters(model), scale=2)
    assert grid.shape[2] == 1
