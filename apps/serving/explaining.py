"""Why a run's model decided (docs/ARCHITECTURE.md, "Looking inside"): Grad-CAM heatmaps for an
uploaded image or an image of the run's dataset, the activation maps of each convolutional stage, and
the first convolution's filters. Reads only; the engine's `serve/explain.py` does the work, with the
same cached Predictor that predicting uses.
"""
import time

import numpy as np
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.datasets.selectors import pack_of
from dlstudio.pictures import png_data_url
from workers import engine

from .predictors import load_upload, predictor_for


def class_index(predictor, label: str | None) -> int | None:
    """The index of the class named `label`; None (the most likely class) when no label is given."""
    if label in (None, ""):
        return None
    try:
        return predictor.classes.index(label)
    except ValueError:
        raise ValidationError(f"{str(label)[:100]!r} is not one of this run's classes.", code="class") from None


def _explained(predictor, array: np.ndarray, label: str | None, started: float) -> dict:
    target = class_index(predictor, label)
    probabilities, heat = predictor.explain(array[None], [target])
    chosen = int(np.argmax(probabilities[0])) if target is None else target
    return {"predictions": predictor.top(probabilities[0], top_k=5), "method": "gradcam",
            "class": predictor.classes[chosen], "heatmap": png_data_url(engine.overlay(array, heat[0])),
            "inference_ms": round((time.perf_counter() - started) * 1000.0, 3)}


def explain_upload(*, run, upload, label: str | None = None) -> dict:
    """Where the model looked in an uploaded image, for `label` or its most likely class."""
    if upload is None:
        raise ValidationError("Send the image to explain as `image`.", code="image")
    predictor = predictor_for(run)
    started = time.perf_counter()
    _, array = load_upload(predictor, upload)
    return _explained(predictor, array, label, started)


def explain_dataset_image(*, run, index: int, label: str | None = None) -> dict:
    """The same for image `index` of the dataset the run trained on (its misclassified gallery)."""
    predictor = predictor_for(run)
    started = time.perf_counter()
    if run.dataset_id is None:
        raise Http404("The dataset this run trained on was deleted.")
    try:
        images = pack_of(run.dataset).images
    except LookupError:
        raise Http404("The dataset this run trained on is not ready.") from None
    if not 0 <= index < len(images):
        raise Http404("No such image.")
    return _explained(predictor, np.asarray(images[index]), label, started)


def activations_of(*, run, upload) -> dict:
    """For each convolutional stage, its most active channels' maps for an uploaded image."""
    if upload is None:
        raise ValidationError("Send the image to look inside as `image`.", code="image")
    predictor = predictor_for(run)
    started = time.perf_counter()
    _, array = load_upload(predictor, upload)
    stages = []
    for name, maps in predictor.activations(array):
        channels = engine.top_channels(maps)
        stages.append({"name": name, "shape": list(maps.shape), "channels": [int(c) for c in channels],
                       "image": png_data_url(engine.channel_grid(maps, channels))})
    return {"stages": stages, "inference_ms": round((time.perf_counter() - started) * 1000.0, 3)}


def filters_picture(run) -> np.ndarray:
    """The first convolution's filters on a grid, each stretched to its own range."""
    return engine.filter_grid(predictor_for(run).filters())
