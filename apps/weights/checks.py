"""What makes an uploaded weights file acceptable, checked without executing anything in it.

It is stored under a generated name while it is checked; its first bytes must be a PyTorch file
(a torch.save zip of stored entries only, as torch writes them, or the format before PyTorch 1.6)
or a safetensors header; the engine's safe loader (`torch.load(weights_only=True)` or safetensors)
must read plain tensors from it; and they must load into the network its arch builds, by the very
function a run uses. Every refusal is one sentence, with the code of the field it is about.
"""
import hashlib
import logging
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError

from dlstudio import bounded_json, storage
from workers import engine
from workers.engine import CheckpointError

log = logging.getLogger(__name__)

SUFFIXES = {"pth": ".pth", "safetensors": ".safetensors"}  # the engine picks its loader by the suffix
# torch.save's magic number, pickled at the start of a file in the format before PyTorch 1.6.
LEGACY_MAGIC = b"\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"
MAX_SAFETENSORS_HEADER = 100 * 2**20  # the safetensors library's own limit
MAX_ZIP_ENTRIES = 100_000
CHUNK = 2**20


@dataclass(frozen=True)
class Checked:
    path: str  # relative to the data dir, with the suffix of its format
    format: str
    size: int
    sha256: str
    tensors: int


def check_upload(upload, relative: str, *, arch: str, limit: int, shown: str) -> Checked:
    """Store `upload` at `relative`, check it and rename it to its format's suffix; ValidationError
    otherwise, with nothing left on disk."""
    try:
        size, sha256 = _store(upload, relative, limit=limit, shown=shown)
        file_format = _sniff(storage.absolute(relative), shown=shown)
        relative = _rename(relative, SUFFIXES[file_format])
        tensors = _check_fits(storage.absolute(relative), arch=arch, shown=shown)
        storage.put(relative)
    except BaseException:
        storage.remove(relative)
        raise
    return Checked(path=relative, format=file_format, size=size, sha256=sha256, tensors=tensors)


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
            header = bounded_json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError):  # TooDeep is a ValueError too
            raise ValidationError(f"{shown} has a damaged safetensors header.", code="file") from None
    if not isinstance(header, dict):
        raise ValidationError(f"{shown} has a damaged safetensors header.", code="file")
    return True


def _check_fits(path: Path, *, arch: str, shown: str) -> int:
    """The number of tensors, once they are known to be plain tensors that load into `arch`."""
    try:
        tensors = len(engine.load_weights_file(path))
    except CheckpointError as exc:
        raise ValidationError(_sentence(str(exc), path, shown), code="file") from None
    except Exception:  # safetensors' own errors, or anything else a hostile file provokes
        log.info("weights file %s could not be read", shown, exc_info=True)
        raise ValidationError(f"{shown} could not be read as a state dict of tensors.", code="file") from None
    # The engine reads the file again here, exactly as a run does.
    model = engine.build_model({"arch": arch}, num_classes=1000, channels=3, image_size=224)
    try:
        engine.load_imagenet_weights(model, weights_file=path)
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
