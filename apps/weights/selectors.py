"""Reads of the team weights library, scoped to the user's teams, and what this machine's cache holds."""
from functools import cache

from django.conf import settings
from django.db.models import Count, QuerySet
from django.http import Http404

from apps.teams.selectors import scoped
from workers import engine

from .models import WeightsFile

MAX_WEIGHTS_BYTES = 2**30  # vgg16, the largest arch here, is 528 MB


def weights_files_for(user) -> QuerySet[WeightsFile]:
    return scoped(WeightsFile.objects.all(), user).select_related("team", "created_by")


def weights_file_for(user, weights_id) -> WeightsFile:
    weights_file = weights_files_for(user).filter(pk=weights_id).first()
    if weights_file is None:
        raise Http404("No such weights file.")
    return weights_file


def weights_files_of(user, team) -> QuerySet[WeightsFile]:
    """The team's files in the order the experiment form lists them."""
    return weights_files_for(user).filter(team=team).order_by("arch", "name", "-id")


def weights_files_with_use(user, team) -> QuerySet[WeightsFile]:
    """The team's files, each with how many runs started from it (`run_count`)."""
    return weights_files_for(user).filter(team=team).annotate(run_count=Count("runs"))


def max_weights_bytes() -> int:
    return min(MAX_WEIGHTS_BYTES, settings.MAX_UPLOAD_MB * 2**20)


@cache
def _file_names(arch: str) -> tuple[str, ...]:
    return tuple(engine.imagenet_file_names(arch))


def imagenet_cache() -> dict:
    """What torchvision's cache on this (web) machine holds, per arch, as the engine would find it:
    {"folder": str, "archs": {arch: {"file": expected name, "present": bool, "found": name or ""}}}.
    Workers have caches of their own; this says only what this machine has. (The first call imports
    PyTorch, through the engine; pages that do not show the cache never pay for it.)"""
    folder = engine.imagenet_cache_folder()
    archs = {}
    for arch in engine.IMAGENET_ARCHS:
        names = _file_names(arch)
        found = next((name for name in names if (folder / name).is_file()), "")
        archs[arch] = {"file": names[0], "present": bool(found), "found": found}
    return {"folder": engine.shown_folder(folder), "archs": archs}


def stored_files() -> set[str]:
    """Every weights file of every team (`manage.py storage_push`)."""
    return set(WeightsFile.objects.values_list("path", flat=True)) - {""}
