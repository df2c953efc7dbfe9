"""The evaluation of a trained model on one split, in the shape of `/api/runs/<id>/evaluation`:
accuracy, top-k accuracy, confusion matrix, per-class precision/recall/F1/support and the
misclassified samples (pack index, true and predicted class, confidence).
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..ingest.pack import Pack, open_pack
from .checkpoint import load_checkpoint
from .data import PackedDataset
from .models import build_model
from .preprocess import InputPipeline, Preprocessing
from .session import resolve_device

TOP_K = (1, 3, 5)
MAX_MISCLASSIFIED = 200


@torch.inference_mode()
def predict_split(*, model: nn.Module, data: PackedDataset, pipeline: InputPipeline, split: str,
                  batch_size: int = 256,
                  autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class probabilities, labels and pack indices of every image of a split, on the host."""
    model.eval()
    probs, labels, index = [], [], []
    for batch in data.batches(split, batch_size=batch_size):
        with autocast():
            logits = model(pipeline(batch.images))
        probs.append(torch.softmax(logits.float(), 1))
        labels.append(batch.labels)
        index.append(batch.index)
    if not probs:
        return np.zeros((0, len(data.pack.classes)), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    # One transfer at the end instead of one per batch.
    return (torch.cat(probs).cpu().numpy(), torch.cat(labels).cpu().numpy(), torch.cat(index).cpu().numpy())


def classification_report(*, probabilities: np.ndarray, labels: np.ndarray, index: np.ndarray,
                          classes: list[str], split: str,
                          max_misclassified: int = MAX_MISCLASSIFIED) -> dict[str, Any]:
    k = len(classes)
    predicted = probabilities.argmax(1) if len(labels) else np.zeros(0, np.int64)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion)
    support = confusion.sum(1)
    predicted_count = confusion.sum(0)
    precision = _ratio(true_positive, predicted_count)
    recall = _ratio(true_positive, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    ranked = np.argsort(-probabilities, axis=1, kind="stable")
    top_k = {str(n): float((ranked[:, :n] == labels[:, None]).any(1).mean()) if len(labels) else 0.0
             for n in TOP_K if n <= k}
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]] if len(wrong) else np.zeros(0)
    # The most confident mistakes first: those are the likeliest label errors in the data.
    order = wrong[np.argsort(-confidence, kind="stable")][:max_misclassified]
    return {
        "split": split,
        "num_images": int(len(labels)),
        "accuracy": float(true_positive.sum() / max(len(labels), 1)),
        "top_k_accuracy": top_k,
        "classes": list(classes),
        "confusion": confusion.tolist(),
        "per_class": [
            {"class": name, "precision": float(precision[i]), "recall": float(recall[i]),
             "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(classes)],
        "misclassified": [
            {"image": int(index[i]), "true": classes[labels[i]], "predicted": classes[predicted[i]],
             "confidence": float(probabilities[i, predicted[i]])}
            for i in order],
    }


def default_split(pack: Pack) -> str | None:
    """The test split, or val when there is no test split (as GET /api/runs/<id>/evaluation says)."""
    for split in ("test", "val"):
        if len(pack.indices(split)):
            return split
    return None


def evaluate_checkpoint(*, checkpoint: str | os.PathLike, pack: Pack | str | os.PathLike,
                        split: str | None = None, device: str = "auto", batch_size: int = 256,
                        resident: bool | None = None) -> dict[str, Any] | None:
    """Evaluate a saved model on a pack split with the checkpoint's own preprocessing."""
    state = load_checkpoint(checkpoint)
    pack = pack if isinstance(pack, Pack) else open_pack(pack)
    if list(state["classes"]) != pack.classes:
        raise ValueError("the checkpoint was trained on other classes than this pack holds")
    split = split or default_split(pack)
    if split is None:
        return None
    torch_device = resolve_device(device)
    preprocessing = Preprocessing.from_checkpoint(state["preprocessing"])
    model = build_model(state["config"], num_classes=len(state["classes"]), channels=preprocessing.channels,
                        image_size=preprocessing.image_size)
    model.load_state_dict(state["model"])
    model.to(torch_device)
    probabilities, labels, index = predict_split(
        model=model, data=PackedDataset(pack, device=torch_device, resident=resident),
        pipeline=InputPipeline(preprocessing, device=torch_device), split=split, batch_size=batch_size)
    return classification_report(probabilities=probabilities, labels=labels, index=index,
                                 classes=list(state["classes"]), split=split)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = numerator.astype(np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
