"""Reads of datasets, always scoped to the user's teams (a foreign id is a 404)."""
from functools import lru_cache

from django.db.models import QuerySet
from django.http import Http404

from apps.teams.selectors import scoped
from dlstudio import storage
from workers.engine import Pack, open_pack

from .models import Dataset, DatasetClass, Image


def datasets_for(user) -> QuerySet[Dataset]:
    return scoped(Dataset.objects.all(), user).select_related("team")


def dataset_for(user, dataset_id) -> Dataset:
    dataset = datasets_for(user).filter(pk=dataset_id).first()
    if dataset is None:
        raise Http404("No such dataset.")
    return dataset


def ready_datasets_of(user, team) -> QuerySet[Dataset]:
    """What an experiment can be made on."""
    return datasets_for(user).filter(team=team, status=Dataset.Status.READY)


def class_counts(dataset: Dataset) -> list[dict]:
    return [{"name": c.name, "train": c.train, "val": c.val, "test": c.test} for c in dataset.classes.all()]


def number_of_classes(dataset_id: int) -> int:
    return DatasetClass.objects.filter(dataset_id=dataset_id).count()


def gallery_images(dataset: Dataset, *, label: int | None = None, split: int | None = None) -> QuerySet[Image]:
    images = dataset.images.all()
    if label is not None:
        images = images.filter(label=label)
    if split is not None:
        images = images.filter(split=split)
    return images.order_by("index")


@lru_cache(maxsize=16)
def _open_pack(absolute_path: str) -> Pack:
    return open_pack(absolute_path)


def pack_of(dataset: Dataset) -> Pack:
    """The dataset's opened pack, kept per process: a ready pack never changes, and opening one maps its files."""
    if not dataset.is_ready or not dataset.pack_path:
        raise LookupError("this dataset has no pack yet")
    return _open_pack(str(storage.absolute(dataset.pack_path)))
