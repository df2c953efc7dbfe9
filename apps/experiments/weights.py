"""The team weights library: ImageNet state dicts uploaded once, used by runs that start from ImageNet.

An upload is stored under a generated name and checked without executing anything: its first bytes
must be a PyTorch file or a safetensors header; it is read with the engine's own safe loader
(`torch.load(weights_only=True)` or safetensors) and loaded into the network its arch builds, by the
very function a run uses. Anything that fails leaves no file behind and says why in one sentence.

torch is imported inside the functions that need it: the web app pays for it only when it checks an
upload or looks into torchvision's cache.
"""
import hashlib
import json
import logging
import struct
import uuid
import zipfile
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404

from apps.datasets import storage
from apps.teams.selectors import scoped
from workers.engine.config import IMAGENET_ARCHS

from .models import LRFinding, Run, WeightsFile

log = logging.getLogger(__name__)

MAX_WEIGHTS_BYTES = 2**30  # vgg16, the largest arch here, is 528 MB
EXTENSIONS = (".pth", ".pt", ".safetensors")
SUFFIXES = {"pth": ".pth", "safetensors": ".safetensors"}  # the engine picks its loader by the suffix
# torch.save's magic number, pickled at the start of a file in the format before PyTorch 1.6.
LEGACY_MAGIC = b"\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"
MAX_SAFETENSORS_HEADER = 100 * 2**20  # the safetensors library's own limit
MAX_ZIP_ENTRIES = 100_000
CHUNK = 2**20


# --- reads -----------------------------------------------------------------------------------

def weights_files_for(user) -> QuerySet[WeightsFile]:
    return scoped(WeightsFile.objects.all(), user).select_related("team", "created_by")


def weights_file_for(user, weights_id) -> WeightsFile:
    weights_file = weights_files_for(user).filter(pk=weights_id).first()
    if weights_file is None:
        raise Http404("No such weights file.")
    return weights_file


def weights_file_in_use(weights_file: WeightsFile) -> bool:
    """True while a queued or running run (or LR range test) would read the file."""
    active_finding = (LRFinding.Status.QUEUED, LRFinding.Status.RUNNING)
    return (Run.objects.filter(weights_file=weights_file, status__in=Run.ACTIVE_STATUSES).exists()
            or LRFinding.objects.filter(experiment__weights_file=weights_file, status__in=active_finding).exists())


def max_weights_bytes() -> int:
    return min(MAX_WEIGHTS_BYTES, settings.MAX_UPLOAD_MB * 2**20)


@lru_cache(maxsize=None)
def _file_names(arch: str) -> tuple[str, ...]:
    from workers.engine.transfer import imagenet_file_names

    return tuple(imagenet_file_names(arch))


def imagenet_cache() -> dict:
    """What torchvision's cache on this (web) machine holds, per arch, as the engine would find it:
    {"folder": str, "archs": {arch: {"file": expected name, "present": bool, "found": name or ""}}}.
    Workers have caches of their own; this says only what this machine has."""
    import torch

    folder = Path(torch.hub.get_dir()) / "checkpoints"
    archs = {}
    for arch in IMAGENET_ARCHS:
        names = _file_names(arch)
        found = next((name for name in names if (folder / name).is_file()), "")
        archs[arch] = {"file": names[0], "present": bool(found), "found": found}
    return {"folder": str(folder), "archs": archs}


# --- writes ----------------------------------------------------------------------------------

def weights_file_create(*, team, user, name: str, arch: str, upload) -> WeightsFile:
    """A checked weights file of `team` for `arch`, or ValidationError (code "file" or "arch").

    The checks, in order, each before anything is read further: the arch has ImageNet weights; the
    name ends in .pth, .pt or .safetensors; the size is within the limit; the content is a torch.save
    zip (stored entries only, as torch writes them), an old-format torch file or a safetensors header;
    the engine's safe loader reads plain tensors from it; they load into `build_model` for the arch
    exactly as a run loads them (`load_imagenet_weights`).
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
    relative = f"weights/{uuid.uuid4().hex}.part"
    try:
        size, sha256 = _store(upload, relative, limit=limit, shown=shown)
        file_format = _sniff(storage.absolute(relative), shown=shown)
        relative = _rename(relative, SUFFIXES[file_format])
        tensors = _check_fits(storage.absolute(relative), arch=arch, shown=shown)
        return WeightsFile.objects.create(team=team, created_by=user, name=(name or "").strip()[:200] or shown,
                                          arch=arch, path=relative, format=file_format, size=size, sha256=sha256,
                                          tensors=tensors)
    except BaseException:
        storage.remove(relative)
        raise


def weights_file_delete(*, weights_file: WeightsFile) -> None:
    """Remove the row and, once that is committed, the file. Experiments that named it start from
    torchvision's cache file from then on (the foreign key is SET_NULL); runs keep their history."""
    if weights_file_in_use(weights_file):
        raise ValidationError("This weights file is used by a run that is queued or running; wait for it to "
                              "finish or cancel it first.", code="weights_file")
    path = weights_file.path
    weights_file.delete()
    transaction.on_commit(lambda: storage.remove(path))


# --- the checks ------------------------------------------------------------------------------

def _store(upload, relative: str, *, limit: int, shown: str) -> tuple[int, str]:
    """Stream the upload to `relative`, hashing as it goes; (bytes, sha256)."""
    target = storage.absolute(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as out:
        for chunk in upload.chunks(CHUNK):
            size += len(chunk)
            if size > limit:
                raise ValidationError(f"{shown} is larger than the limit of {limit // 2**20} MB for a weights file.",
                                      code="file")
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise ValidationError(f"{shown} is empty.", code="file")
    return size, digest.hexdigest()


def _rename(relative: str, suffix: str) -> str:
    renamed = str(Path(relative).with_suffix(suffix))
    storage.absolute(relative).rename(storage.absolute(renamed))
    return renamed


def _sniff(path: Path, *, shown: str) -> str:
    """"pth" or "safetensors" from the first bytes, or ValidationError; nothing is unpickled here."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04"):
        _check_torch_zip(path, shown=shown)
        return "pth"
    if head[:1] == b"\x80" and LEGACY_MAGIC in head[:32]:
        return "pth"  # torch.load(weights_only=True) reads this format with the same restricted unpickler
    if _is_safetensors(path, head, shown=shown):
        return "safetensors"
    raise ValidationError(f"{shown} is neither a PyTorch file (torch.save) nor a safetensors file.", code="file")


def _check_torch_zip(path: Path, *, shown: str) -> None:
    """torch.save writes a zip of uncompressed entries with one data.pkl; a zip of anything else (or a
    compressed one, which could expand far beyond its size) is refused before torch reads it."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ValidationError(f"{shown} is a damaged zip file, not a PyTorch file.", code="file") from None
    pickles = [e for e in entries if e.filename.rsplit("/", 1)[-1] == "data.pkl"]
    if len(entries) > MAX_ZIP_ENTRIES or len(pickles) != 1:
        raise ValidationError(f"{shown} is a zip archive but not a PyTorch file (torch.save writes one data.pkl).",
                              code="file")
    if (any(e.compress_type != zipfile.ZIP_STORED for e in entries)
            or sum(e.file_size for e in entries) > path.stat().st_size):
        raise ValidationError(f"{shown} holds compressed entries, which torch.save never writes; it was refused "
                              "unread.", code="file")


def _is_safetensors(path: Path, head: bytes, *, shown: str) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then that many bytes of JSON object."""
    if len(head) < 9:
        return False
    length = struct.unpack("<Q", head[:8])[0]
    if not 2 <= length <= min(MAX_SAFETENSORS_HEADER, path.stat().st_size - 8) or head[8:9] != b"{":
        return False
    with open(path, "rb") as f:
        f.seek(8)
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError):
            raise ValidationError(f"{shown} has a damaged safetensors header.", code="file") from None
    if not isinstance(header, dict):
        raise ValidationError(f"{shown} has a damaged safetensors header.", code="file")
    return True


def _check_fits(path: Path, *, arch: str, shown: str) -> int:
    """The number of tensors, once they are known to be plain tensors that load into `arch`."""
    import torch

    from workers.engine.checkpoint import CheckpointError, load_weights_file
    from workers.engine.models import build_model
    from workers.engine.transfer import load_imagenet_weights

    try:
        state = load_weights_file(path)
    except CheckpointError as exc:
        raise ValidationError(_sentence(str(exc), path, shown), code="file") from None
    except Exception:  # safetensors' own errors, or anything else a hostile file provokes
        log.info("weights file %s could not be read", shown, exc_info=True)
        raise ValidationError(f"{shown} could not be read as a state dict of tensors.", code="file") from None
    if not state or not all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()):
        raise ValidationError(f"{shown} is not a state dict of tensors.", code="file")
    tensors = len(state)
    del state  # the engine reads the file again below, exactly as a run does

    model = build_model({"arch": arch}, num_classes=1000, channels=3, image_size=224)
    try:
        load_imagenet_weights(model, weights_file=path)
    except Exception as exc:
        text = _sentence(str(exc), path, shown).rstrip(".").replace("this network", arch)
        if arch not in text:
            text = f"These weights do not fit {arch}: {text[0].lower()}{text[1:]}"
        raise ValidationError(f"{text}; pick the architecture they were saved from.", code="arch") from None
    return tensors


def _sentence(text: str, path: Path, shown: str) -> str:
    """An engine message about the stored file, about the file the user knows instead."""
    text = text.strip().replace(path.name, shown)
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else f"{text}."
