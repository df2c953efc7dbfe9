import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.support.factories import OPTIONS
from tests.support.services import wait_until
from tests.support.stack import own_stack


@pytest.fixture(autouse=True)
def data_dir(isolated_data_dir):
    return isolated_data_dir


@pytest.fixture
def stack(transactional_db, worker_env, redis_server, data_dir, tmp_path):
    """A broker, workers and beat of the test's own (started by the test, stopped here), sharing the test's
    data dir, so files a trial writes are the test's alone.

    Its horizon is twice the other tests': these tests assert that no live trial is ever handed on, over
    minutes of training on a loaded machine, and a stall of a few seconds there is not a lost worker."""
    with own_stack(env={**worker_env, "DLSTUDIO_DATA_DIR": str(data_dir)}, directory=tmp_path / "stack",
                   session_redis_url=redis_server.url, stale_after="12") as own:
        yield own


def digits_zip(path, *, per_class: int):
    """scikit-learn's 8x8 handwritten digits as an upload: <digit>/<n>.png, `per_class` of each digit."""
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = np.clip(np.rint(data.images * (255 / 16)), 0, 255).astype(np.uint8)
    counts = dict.fromkeys(range(10), 0)
    with zipfile.ZipFile(path, "w") as archive:
        for i, (image, label) in enumerate(zip(pixels, data.target)):
            if counts[label] >= per_class:
                continue
            counts[label] += 1
            out = io.BytesIO()
            Image.fromarray(image, mode="L").save(out, format="PNG")
            archive.writestr(f"{label}/{i}.png", out.getvalue())
    return path


def digits_dataset(team, path, *, per_class: int = 40):
    """A ready digits dataset of `team`, ingested here or by a worker of the stack (whichever claims it)."""
    from apps.datasets.ingest import dataset_ingest
    from apps.datasets.models import Dataset
    from apps.datasets.services import dataset_create

    dataset = dataset_create(team=team, user=None, name="digits", source_path=digits_zip(path, per_class=per_class),
                             options=OPTIONS)
    dataset_ingest(dataset_id=dataset.pk)
    dataset = wait_until(lambda: Dataset.objects.exclude(status=Dataset.Status.INGESTING).filter(pk=dataset.pk)
                         .first(), timeout=120, message="the digits to be ingested")
    assert dataset.status == Dataset.Status.READY, dataset.error
    return dataset
