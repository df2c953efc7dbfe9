import numpy as np
import pytest
import torch

from workers.engine.train.config import AugmentConfig
from workers.engine.train.preprocess import InputPipeline, Preprocessing, equalize_batch, train_statistics


def equalize_reference(channel: np.ndarray) -> np.ndarray:
    values = channel.ravel()
    cdf = np.bincount(values, minlength=256).cumsum()
    cdf_min = cdf[values.min()]
    if values.size == cdf_min:
        return channel
    lut = np.floor((cdf - cdf_min) * 255 / (values.size - cdf_min) + 0.5).clip(0, 255)
    return lut[channel].astype(np.uint8)


def test_equalize_matches_the_textbook_mapping_per_image_and_channel():
    rng = np.random.default_rng(0)
    images = rng.integers(40, 120, (5, 3, 9, 7)).astype(np.uint8)
    images[4, 1] = 77  # a constant channel stays as it is
    out = equalize_batch(torch.from_numpy(images)).numpy()
    for i in range(5):
        for c in range(3):
            np.testing.assert_array_equal(out[i, c], equalize_reference(images[i, c]))
    assert out[0].max() == 255 and out[0].min() == 0  # the range is stretched
    assert (out[4, 1] == 77).all()


def pipeline_for(pack, normalize, equalize=False):
    mean, std, mean_image = train_statistics(pack.images, pack.indices("train"), equalize=equalize)
    pre = Preprocessing(image_size=pack.image_size, resize_mode="squash", channels=pack.channels,
                        classes=pack.classes, normalize=normalize, equalize=equalize, mean=mean, std=std,
                        mean_image=mean_image)
    return InputPipeline(pre, device=torch.device("cpu")), pre


def test_train_statistics_without_equalisation_equal_the_packs(tiny_pack):
    mean, std, mean_image = train_statistics(tiny_pack.images, tiny_pack.indices("train"), equalize=False)
    np.testing.assert_allclose(mean, tiny_pack.mean, rtol=1e-6)
    np.testing.assert_allclose(std, tiny_pack.std, rtol=1e-5)
    np.testing.assert_allclose(mean_image, tiny_pack.mean_image, atol=1e-6)


@pytest.mark.parametrize("normalize", ["scale", "channel", "mean_image"])
def test_normalisations(make_pack, normalize):
    pack = make_pack(channels=3)
    pipeline, pre = pipeline_for(pack, normalize)
    train = torch.from_numpy(np.array(pack.images[pack.indices("train")]))
    x = pipeline(train)
    assert x.shape == (len(train), 3, 12, 12) and x.dtype == torch.float32
    raw = train.permute(0, 3, 1, 2).float() / 255
    if normalize == "scale":
        torch.testing.assert_close(x, raw)
    elif normalize == "channel":
        torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
        torch.testing.assert_close(x.std((0, 2, 3)), torch.ones(3), atol=1e-2, rtol=0)
    else:
        torch.testing.assert_close(x.mean(0), torch.zeros(3, 12, 12), atol=1e-5, rtol=0)
        torch.testing.assert_close(x, raw - torch.from_numpy(pre.mean_image).permute(2, 0, 1))


def test_equalised_inputs_are_normalised_with_equalised_statistics(tiny_pack):
    pipeline, _ = pipeline_for(tiny_pack, "channel", equalize=True)
    x = pipeline(torch.from_numpy(np.array(tiny_pack.images[tiny_pack.indices("train")])))
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-2


def batch(n=64, size=10, channels=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g)


def augmented(x, seed=0, **options):
    from workers.engine.train.augment import augment_batch
    return augment_batch(x, AugmentConfig(**options), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("flip, dim", [("hflip", 3), ("vflip", 2)])
def test_flips_mirror_some_images_exactly_and_leave_the_rest(flip, dim):
    x = batch()
    out = augmented(x, **{flip: True})
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(dim)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert 10 < mirrored.sum() < 54


def test_crop_pad_shifts_by_whole_pixels_with_zero_fill():
    x = batch(n=32) + 0.1  # no zeros inside, so the fill is recognisable
    out = augmented(x, crop_pad=2)
    shifts = set()
    for i in range(len(x)):
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                expected = torch.zeros_like(x[i])
                ys, xs = slice(max(0, -dy), 10 - max(0, dy)), slice(max(0, -dx), 10 - max(0, dx))
                yd, xd = slice(max(0, dy), 10 - max(0, -dy)), slice(max(0, dx), 10 - max(0, -dx))
                expected[:, ys, xs] = x[i][:, yd, xd]
                if torch.allclose(out[i], expected, atol=1e-5):
                    shifts.add((dy, dx))
                    break
            else:
                continue
            break
        else:
            pytest.fail(f"image {i} is not a whole-pixel shift of its input")
    assert len(shifts) > 5


@pytest.mark.parametrize("options", [{"rotate": 30}, {"zoom": 0.3}, {"color_jitter": 0.5}])
def test_geometric_and_colour_augmentations_change_images_and_stay_in_range(options):
    x = batch(channels=3)
    out = augmented(x, **options)
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    changed = (out - x).abs().flatten(1).amax(1) > 1e-3
    assert changed.float().mean() > 0.9


def test_augmentation_is_reproducible_from_the_generator_and_off_means_identity():
    x = batch(channels=3)
    options = dict(hflip=True, vflip=True, crop_pad=2, zoom=0.1, rotate=10, color_jitter=0.2)
    torch.testing.assert_close(augmented(x, seed=3, **options), augmented(x, seed=3, **options))
    assert not torch.equal(augmented(x, seed=3, **options), augmented(x, seed=4, **options))
    assert not AugmentConfig().any
