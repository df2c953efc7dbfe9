"""Prediction with a saved model, for the web app (one cached Predictor per checkpoint) and the CLI.

An uploaded image goes through exactly the steps its training images went through: the same
decode and resize (`imaging.load_array`, which packing uses) and the same `InputPipeline` with the
statistics the checkpoint carries. Everything that can be done once is done in `from_checkpoint`,
so a call costs one decode and one forward pass.
"""
from __future__ import annotations

import os
import threading
from typing import Any, BinaryIO, Sequence

import numpy as np
import torch

from ..ingest.imaging import load_array
from . import explain
from ..train.checkpoint import load_checkpoint
from ..train.models import Classifier, build_model
from ..train.preprocess import InputPipeline, Preprocessing
from ..train.session import resolve_device


class Predictor:
    def __init__(self, *, model: Classifier, preprocessing: Preprocessing, device: torch.device):
        self.device = device
        self.preprocessing = preprocessing
        self.classes = list(preprocessing.classes)
        self.model = model.to(device).eval()
        self.pipeline = InputPipeline(preprocessing, device=device)
        # Inference is thread-safe; the lock only keeps concurrent requests from oversubscribing cores.
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, device: str = "cpu") -> "Predictor":
        state = load_checkpoint(path)
        preprocessing = Preprocessing.from_checkpoint(state["preprocessing"])
        model = build_model(state["config"], num_classes=len(state["classes"]), channels=preprocessing.channels,
                            image_size=preprocessing.image_size)
        model.load_state_dict(state["model"])
        return cls(model=model, preprocessing=preprocessing, device=resolve_device(device))

    def load(self, image: bytes | BinaryIO) -> np.ndarray:
        """Decode and resize like packing did: H x W x C uint8. Raises imaging.ImageError."""
        p = self.preprocessing
        return load_array(image, size=p.image_size, resize_mode=p.resize_mode, channels=p.channels)

    def probabilities(self, arrays: np.ndarray) -> np.ndarray:
        """N x H x W x C uint8 (as in a pack) -> N x classes probabilities."""
        with self._lock, torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(arrays)).to(self.device)
            logits = self.model(self.pipeline(batch))
            return torch.softmax(logits.float(), 1).cpu().numpy()

    def predict(self, image: bytes | BinaryIO, *, top_k: int = 5) -> list[dict[str, Any]]:
        """[{"label", "probability"}], most likely first."""
        return self.predict_many([image], top_k=top_k)[0]

    def predict_many(self, images: Sequence[bytes | BinaryIO], *, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """One forward pass for all images."""
        if not images:
            return []
        probabilities = self.probabilities(np.stack([self.load(image) for image in images]))
        return [self.top(row, top_k=top_k) for row in probabilities]

    def explain(self, arrays: np.ndarray, targets: Sequence[int | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """N x classes probabilities and N x H x W Grad-CAM heatmaps (`explain.gradcam`), each for its
        target class index, or for the most likely class where the target is None."""
        with self._lock:  # captum hooks the model while it works: no other forward pass may run meanwhile
            batch = self.pipeline(torch.from_numpy(np.array(arrays)).to(self.device))  # a copy: packs are read-only
            with torch.inference_mode():
                probabilities = torch.softmax(self.model(batch).float(), 1).cpu().numpy()
            wanted = targets if targets is not None else [None] * len(arrays)
            chosen = [int(np.argmax(p)) if t is None else int(t) for p, t in zip(probabilities, wanted)]
            return probabilities, explain.gradcam(self.model, batch, chosen)

    def activations(self, array: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """(stage name, C x H x W maps) of one H x W x C uint8 image (`explain.stage_activations`)."""
        with self._lock:
            batch = self.pipeline(torch.from_numpy(np.array(array[None])).to(self.device))
            return explain.stage_activations(self.model, batch)

    def filters(self) -> np.ndarray:
        return explain.first_conv_filters(self.model)

    def top(self, probabilities: np.ndarray, *, top_k: int = 5) -> list[dict[str, Any]]:
        order = np.argsort(-probabilities, kind="stable")[:max(1, top_k)]
        return [{"label": self.classes[i], "probability": float(probabilities[i])} for i in order]


def set_threads(threads: int) -> None:
    """Intra-op threads of this process's PyTorch: a server answering one small image per request is
    fastest with 1, and its own threads then share the cores instead of fighting over them."""
    torch.set_num_threads(threads)
