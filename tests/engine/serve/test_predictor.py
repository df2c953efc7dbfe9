import io

import numpy as np
import pytest
import torch
from PIL import Image

from workers.engine import Predictor, fit
from workers.engine.train.data import PackedDataset
from workers.engine.train.evaluation import predict_split
from workers.engine.errors import ImageError
from workers.engine.ingest.imaging import load_array
from workers.engine.ingest.pack_writer import write_pack
from workers.engine.train.preprocess import InputPipeline

from tests.engine.conftest import CLASSES, make_images

CONFIG = {"epochs": 3, "batch_size": 16, "hidden_units": [32], "normalize": "mean_image", "equalize": True}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    images, labels = make_images(240)
    splits = np.random.default_rng(1).choice([0, 1, 2], 240, p=[0.7, 0.15, 0.15])
    pack = write_pack(folder / "pack", images, labels, splits, CLASSES, extra={"options": {"resize_mode": "crop"}})
    result = fit(pack=pack, config=CONFIG, out_dir=folder / "run")
    assert result.best_val_acc >= 0.9
    return pack, Predictor.from_checkpoint(result.checkpoint, device="cpu")


def as_png(array: np.ndarray, *, size: tuple[int, int], mode: str) -> bytes:
    """A 12x12 gray pack image as another file: other size, other aspect, other mode."""
    image = Image.fromarray(array[:, :, 0], mode="L").resize(size, Image.Resampling.NEAREST).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_of_another_size_and_mode_gets_the_class_the_training_pipeline_gives(trained, tmp_path):
    pack, predictor = trained
    assert predictor.preprocessing.resize_mode == "crop" and predictor.preprocessing.equalize
    picks = pack.indices("test")[:8]
    files = [as_png(pack.images[i], size=(40, 30), mode="RGB") for i in picks]
    # What training would have done with these files: pack them, then the evaluation path.
    arrays = np.stack([load_array(f, size=12, resize_mode="crop", channels=1) for f in files])
    again = write_pack(tmp_path / "again", arrays, pack.labels[picks], np.full(len(picks), 2), pack.classes)
    expected, _, _ = predict_split(model=predictor.model, data=PackedDataset(again, device=torch.device("cpu")),
                                   pipeline=InputPipeline(predictor.preprocessing, device=torch.device("cpu")),
                                   split="test")
    results = predictor.predict_many(files, top_k=3)
    for row, predictions in zip(expected, results):
        assert predictions[0]["label"] == pack.classes[int(row.argmax())]
        assert predictions[0]["probability"] == pytest.approx(float(row.max()), abs=1e-5)
    # And those classes are right: the bar survived decoding, resizing and the colour change.
    assert [p[0]["label"] for p in results] == [pack.classes[pack.labels[i]] for i in picks]


def test_predictions_are_sorted_probabilities_and_batches_agree_with_single_calls(trained):
    pack, predictor = trained
    files = [as_png(pack.images[i], size=(12, 12), mode="L") for i in pack.indices("val")[:4]]
    single = [predictor.predict(f, top_k=5) for f in files]
    batched = predictor.predict_many(files, top_k=5)
    for one, many in zip(single, batched):
        assert [p["label"] for p in one] == [p["label"] for p in many]
        assert [p["probability"] for p in one] == pytest.approx([p["probability"] for p in many], abs=1e-6)
        assert len(one) == 3  # top_k beyond the number of classes gives every class once
        assert sum(p["probability"] for p in one) == pytest.approx(1.0, abs=1e-5)
        assert [p["probability"] for p in one] == sorted((p["probability"] for p in one), reverse=True)
    assert len(predictor.predict(files[0], top_k=1)) == 1


def test_the_predictor_gives_the_probabilities_of_the_evaluation_on_pack_images(trained):
    pack, predictor = trained
    expected, _, index = predict_split(model=predictor.model, data=PackedDataset(pack, device=torch.device("cpu")),
                                       pipeline=predictor.pipeline, split="test")
    np.testing.assert_allclose(predictor.probabilities(np.array(pack.images[index])), expected, atol=1e-6)
    assert not predictor.model.training


def test_a_file_that_is_not_an_image_is_an_image_error(trained):
    _, predictor = trained
    with pytest.raises(ImageError):
        predictor.predict(b"<svg></svg>")
