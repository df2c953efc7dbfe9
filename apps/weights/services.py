"""Writes for the team weights library: ImageNet state dicts uploaded once, used by runs that start
from ImageNet. What makes an upload acceptable is in `checks.py`."""
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.experiments import selectors as experiments
from apps.runs import selectors as runs
from dlstudio import storage
from workers.engine import IMAGENET_ARCHS

from . import checks
from .models import WeightsFile
from .selectors import max_weights_bytes

EXTENSIONS = (".pth", ".pt", ".safetensors")


def weights_file_create(*, team, user, name: str, arch: str, upload) -> WeightsFile:
    """A checked weights file of `team` for `arch`, or ValidationError (code "file" or "arch").

    The checks, in order, each before anything is read further: the arch has ImageNet weights; the
    name ends in .pth, .pt or .safetensors; the size is within the limit; then the content
    (`checks.check_upload`). Anything that fails leaves no file behind.
    """
    shown = Path(getattr(upload, "name", "") or "weights").name[:200]
    if arch not in IMAGENET_ARCHS:
        raise ValidationError(f"{arch or 'That'} has no ImageNet weights; pick one of {', '.join(IMAGENET_ARCHS)}.",
                              code="arch")
    if Path(shown).suffix.lower() not in EXTENSIONS:
        raise ValidationError(f"{shown} is not a .pth, .pt or .safetensors file; upload a state dict saved with "
                              "torch.save or safetensors.", code="file")
    limit = max_weights_bytes()
    if upload.size > limit:
        raise ValidationError(f"{shown} is larger than the limit of {limit // 2**20} MB for a weights file.",
                              code="file")
    checked = checks.check_upload(upload, storage.new_weights_path(), arch=arch, limit=limit, shown=shown)
    try:
        return WeightsFile.objects.create(team=team, created_by=user, name=(name or "").strip()[:200] or shown,
                                          arch=arch, path=checked.path, format=checked.format, size=checked.size,
                                          sha256=checked.sha256, tensors=checked.tensors)
    except BaseException:
        storage.remove(checked.path)
        raise


def weights_file_delete(*, weights_file: WeightsFile) -> None:
    """Remove the row and, once that is committed, the file. Experiments that named it start from
    torchvision's cache file from then on (the foreign key is SET_NULL); runs keep their history."""
    if runs.weights_file_in_use(weights_file) or experiments.weights_file_in_use(weights_file):
        raise ValidationError("This weights file is used by a run that is queued or running; wait for it to "
                              "finish or cancel it first.", code="weights_file")
    path = weights_file.path
    weights_file.delete()
    transaction.on_commit(lambda: storage.remove(path))


def weights_sweep(*, now: float | None = None) -> int:
    """Remove uploads that were being checked when their web process died (`*.part`), an hour later."""
    stale = storage.unchanged_for("weights", 3600, "*.part", now=now)
    for path in stale:
        storage.remove(path)
    return len(stale)
