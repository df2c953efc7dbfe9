"""The sample dataset: scikit-learn's bundled real 8x8 handwritten digits, through the normal ingest."""
import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from .serializers import DatasetOptionsSerializer
from .services import dataset_create

SAMPLES = {"digits": "Handwritten digits (sample)"}


def digits_zip(path: Path) -> Path:
    """A zip laid out <digit>/<n>.png with the 1,797 real 8x8 digits of scikit-learn."""
    # scikit-learn takes a second to import; only this button and command need it.
    from sklearn.datasets import load_digits  # noqa: PLC0415

    digits = load_digits()
    pixels = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, (image, label) in enumerate(zip(pixels, digits.target)):
            out = io.BytesIO()
            PILImage.fromarray(image, mode="L").save(out, format="PNG")
            archive.writestr(f"digits/{label}/{i:04d}.png", out.getvalue())
    return path


def digits_dataset_create(*, team, user, name: str = SAMPLES["digits"]):
    options = DatasetOptionsSerializer(data={})
    options.is_valid(raise_exception=True)
    with tempfile.TemporaryDirectory() as tmp:
        return dataset_create(team=team, user=user, name=name, source_path=digits_zip(Path(tmp) / "digits.zip"),
                              options=options.validated_data)
