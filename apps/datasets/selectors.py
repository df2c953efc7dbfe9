"""Reads of datasets, always scoped to the user's teams (a foreign id is a 404)."""
from django.db.models import QuerySet
from django.http import Http404

from apps.teams.selectors import scoped

from .models import Dataset, Image


def datasets_for(user) -> QuerySet[Dataset]:
    return scoped(Dataset.objects.all(), user).select_related("team")


def dataset_for(user, dataset_id) -> Dataset:
    dataset = datasets_for(user).filter(pk=dataset_id).first()
    if dataset is None:
        raise Http404("No such dataset.")
    return dataset


def class_counts(dataset: Dataset) -> list[dict]:
    return [{"name": c.name, "train": c.train, "val": c.val, "test": c.test} for c in dataset.classes.all()]


def gallery_images(dataset: Dataset, *, label: int | None = None, split: int | None = None) -> QuerySet[Image]:
    images = dataset.images.all()
    if label is not None:
        images = images.filter(label=label)
    if split is not None:
        images = images.filter(split=split)
    return images.order_by("index")


def dataset_in_use(dataset: Dataset) -> bool:
    """True while a run trains on it (runs arrive with the experiments app)."""
    from django.apps import apps

    if not apps.is_installed("apps.experiments"):
        return False
    Run = apps.get_model("experiments", "Run")
    return Run.objects.filter(experiment__dataset=dataset, status__in=Run.ACTIVE_STATUSES).exists()
