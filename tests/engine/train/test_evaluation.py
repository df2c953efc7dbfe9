import numpy as np
import pytest

from workers.engine import evaluate_checkpoint, fit
from workers.engine.train.evaluation import classification_report

CLASSES = ["cat", "dog", "owl"]


def test_report_on_known_predictions():
    probabilities = np.array([
        [0.8, 0.1, 0.1],  # cat, right
        [0.6, 0.3, 0.1],  # dog, called cat (0.6)
        [0.1, 0.2, 0.7],  # owl, right
        [0.2, 0.7, 0.1],  # owl, called dog (0.7), owl is third
        [0.1, 0.8, 0.1],  # dog, right
    ])
    labels = np.array([0, 1, 2, 2, 1])
    report = classification_report(probabilities=probabilities, labels=labels, index=np.array([10, 11, 12, 13, 14]),
                                   classes=CLASSES, split="test")
    assert report["split"] == "test" and report["classes"] == CLASSES and report["num_images"] == 5
    assert report["accuracy"] == pytest.approx(0.6)
    assert report["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert report["top_k_accuracy"] == {"1": pytest.approx(0.6), "3": 1.0}
    cat, dog, owl = report["per_class"]
    assert cat == {"class": "cat", "precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert (dog["precision"], dog["recall"], dog["support"]) == (0.5, 0.5, 2)
    assert (owl["precision"], owl["recall"], owl["f1"]) == (1.0, 0.5, pytest.approx(2 / 3))
    # The most confident mistake first.
    assert report["misclassified"] == [
        {"image": 13, "true": "owl", "predicted": "dog", "confidence": pytest.approx(0.7)},
        {"image": 11, "true": "dog", "predicted": "cat", "confidence": pytest.approx(0.6)},
    ]


def test_a_class_never_predicted_has_zero_precision_not_an_error():
    report = classification_report(probabilities=np.array([[0.9, 0.1], [0.8, 0.2]]), labels=np.array([0, 1]),
                                   index=np.array([0, 1]), classes=["a", "b"], split="val")
    assert report["per_class"][1] == {"class": "b", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_evaluate_checkpoint_matches_what_fit_reported(make_pack, tmp_path):
    pack = make_pack(seed=4)
    # One epoch at a tiny rate leaves mistakes to report.
    result = fit(pack=pack, config={"epochs": 1, "batch_size": 32, "lr": 1e-5}, out_dir=tmp_path)
    report = evaluate_checkpoint(checkpoint=result.checkpoint, pack=pack, device="cpu")
    assert report == result.evaluation
    assert 0 < len(report["misclassified"]) < report["num_images"]
    test = set(pack.indices("test").tolist())
    assert report["num_images"] == len(test) == np.sum(report["confusion"])
    assert all(m["image"] in test and m["true"] != m["predicted"] for m in report["misclassified"])
    assert len(report["misclassified"]) == len(test) - np.trace(report["confusion"])
    assert [c["support"] for c in report["per_class"]] == np.sum(report["confusion"], 1).tolist()
    val = evaluate_checkpoint(checkpoint=result.checkpoint, pack=pack, split="val", device="cpu")
    assert val["split"] == "val" and val["num_images"] == len(pack.indices("val"))
