"""Reads of datasets, always scoped to the user's teams (a foreign id is a 404)."""
from functools import lru_cache

from django.db.models import Q, QuerySet
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


def gallery_images(dataset: Dataset, *, label: int | None = None, split: int | None = None,
                   issue: str | None = None) -> QuerySet[Image]:
    images = gallery_images_with_issue(dataset, issue) if issue else dataset.images.all()
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
    return _open_pack(str(storage.local(dataset.pack_path)))


ISSUES = ("duplicate", "leak", "near_duplicate", "conflict", "corrupt")


def issue_names(dataset: Dataset, issue: str) -> list[str]:
    """The names of the images the health report lists for `issue`, in its order: duplicate and conflict
    groups, the train twin of each removed leak, both images of each near-duplicate pair, and the
    files that were left out (which have no row in the pack)."""
    health = dataset.health or {}
    groups = health.get("duplicate_groups", [])
    if issue in ("duplicate", "conflict"):
        chosen = [g for g in groups if issue == "duplicate" or g.get("conflict")]
        return [image["name"] for group in chosen for image in group.get("images", [])]
    if issue == "leak":
        return [leak["train_name"] for leak in health.get("leaked", [])]
    if issue == "near_duplicate":
        return [name for pair in health.get("near_duplicate_pairs", []) for name in (pair["name"], pair["train_name"])]
    if issue == "corrupt":
        return [entry["name"] for entry in health.get("corrupt", [])]
    raise ValueError(f"unknown issue {issue!r}")


def gallery_images_with_issue(dataset: Dataset, issue: str) -> QuerySet[Image]:
    """The dataset's images named by the health report for `issue` (rows ordered by index)."""
    return dataset.images.filter(name__in=issue_names(dataset, issue)).order_by("index")


def versions_of(dataset: Dataset) -> QuerySet[Dataset]:
    """Every version of the dataset's family, newest first (read through the same team scoping)."""
    family = dataset.family_id
    return Dataset.objects.filter(Q(pk=family) | Q(root_id=family), team=dataset.team).order_by("-version")


FINDINGS_SHOWN = 24  # groups or pairs per finding on the health page; the gallery's issue filter shows all


def health_findings(dataset: Dataset) -> dict:
    """The health report's findings with the pack index of each image it names (None for a file that is
    not in the pack), so the page can show them as thumbnails."""
    health = dataset.health or {}
    groups = health.get("duplicate_groups", [])[:FINDINGS_SHOWN]
    leaks = health.get("leaked", [])[:FINDINGS_SHOWN]
    pairs = health.get("near_duplicate_pairs", [])[:FINDINGS_SHOWN]
    names = {image["name"] for group in groups for image in group.get("images", [])}
    names |= {leak["train_name"] for leak in leaks} | {p["name"] for p in pairs} | {p["train_name"] for p in pairs}
    index = dict(dataset.images.filter(name__in=names).values_list("name", "index"))
    return {
        "duplicates": [{**group, "images": [{**image, "index": index.get(image["name"])}
                                            for image in group.get("images", [])]} for group in groups],
        "leaks": [{**leak, "train_index": index.get(leak["train_name"])} for leak in leaks],
        "near": [{**pair, "index": index.get(pair["name"]), "train_index": index.get(pair["train_name"])}
                 for pair in pairs],
        "label_problems": health.get("label_problems", []),
    }


def stored_files() -> set[str]:
    """Every stored name a dataset's row holds (packs, uploads waiting for ingest), of every team: for moving
    a deployment's files into an object store (`manage.py storage_push`)."""
    return {*Dataset.objects.values_list("pack_path", flat=True),
            *Dataset.objects.values_list("upload_path", flat=True)} - {""}
