"""Writes for datasets: create from an upload (queued for ingest), delete, and the reapers' share.

What a worker does while it ingests lives in `ingest.py`.
"""
import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from apps.runs import selectors as runs
from dlstudio import storage
from workers import broker
from workers.engine import IngestError, check_changes, sniff_archive

from .ingest import room_for
from .models import Dataset

log = logging.getLogger(__name__)

INGEST_TASK = "datasets.ingest"
# A compressed tar is listed only by inflating it: larger ones are checked by the ingest job alone.
LISTED_IN_REQUEST_MAX_BYTES = 64 * 2**20
# Images whose headers the request reads for the upscale check; the ingest job reads them all.
HEADERS_READ_IN_REQUEST = 500
# Where Django writes an upload of more than 2 MB while it arrives (settings.FILE_UPLOAD_TEMP_DIR).
TEMPORARY_UPLOADS = "tmp"
INGEST_LOST_SENTENCE = ("The ingest stopped: its worker was killed or ran out of memory while decoding this "
                        "archive; upload it again, or a smaller one.")


def _store_upload(upload) -> tuple[str, int]:
    """Move (or copy) the uploaded file under a generated name; returns (relative path, bytes)."""
    relative = storage.new_upload_path()
    target = storage.absolute(relative)
    temporary = getattr(upload, "temporary_file_path", None)
    if temporary:
        shutil.move(temporary(), target)
    else:
        with open(target, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    return relative, target.stat().st_size


def dataset_create(*, team, user, name: str, upload=None, source_path: Path | None = None,
                   options: dict) -> Dataset:
    """A new `ingesting` dataset from an uploaded file (or a file on this machine), queued for ingest.

    Raises ValidationError (code "archive") for a file that is not a zip or tar archive; the
    stored copy is removed again, so nothing is left behind.
    """
    if upload is not None:
        relative, size = _store_upload(upload)
        shown_name = getattr(upload, "name", "") or "upload"
    else:
        relative = storage.new_upload_path()
        shutil.copyfile(source_path, storage.absolute(relative))
        size, shown_name = storage.absolute(relative).stat().st_size, Path(source_path).name
    try:
        try:
            kind = sniff_archive(storage.absolute(relative))
        except IngestError as exc:
            raise ValidationError(str(exc), code="archive") from None
        reserved = _room(relative, kind, size, team=team, options=options)
        storage.put(relative)
        dataset = Dataset.objects.create(team=team, created_by=user, name=name.strip(), options=options,
                                         upload_path=relative, upload_name=shown_name[:300], upload_bytes=size,
                                         bytes=reserved)
    except BaseException:
        storage.remove(relative)
        raise
    broker.send_on_commit(INGEST_TASK, dataset.pk)
    return dataset


def _room(relative: str, kind: str, size: int, *, team, options: dict, parent: Dataset | None = None) -> int:
    """What the upload reserves of the team's quota (`ingest.room_for`, on a sample of headers); a refusal
    is a ValidationError naming the field. An archive the listing cannot read is left to the ingest job,
    which says why in the dataset's error, as it always has."""
    if kind.startswith("tar.") and size > LISTED_IN_REQUEST_MAX_BYTES:
        return size
    try:
        return room_for(storage.absolute(relative), team=team, options=options, upload_bytes=size, parent=parent,
                        headers=HEADERS_READ_IN_REQUEST)
    except IngestError as exc:
        if exc.field:
            raise ValidationError(str(exc), code=exc.field) from None
        return size


def _parsed_changes(parent: Dataset, exclude, relabel) -> dict:
    """The change as stored ({"exclude": [index], "relabel": {"index": class}}), checked against the parent's
    images by the engine's own rules; ValidationError (code "exclude" or "relabel") names what is wrong."""
    try:
        rows, names = check_changes(parent.num_images, exclude, relabel)
    except IngestError as exc:
        raise ValidationError(str(exc), code=exc.field) from None
    return {"exclude": rows.tolist(), "relabel": {str(row): name for row, name in names.items()}}


def dataset_version_create(*, parent: Dataset, user, upload=None, exclude=None, relabel=None,
                           labels: str = "folders") -> Dataset:
    """A new `ingesting` version of `parent`: its images, less `exclude`, some relabelled, plus those of
    `upload`; queued like an upload, and made by deriving the parent's pack (only added images decode).

    Raises ValidationError for a parent that is not ready, an empty change, or a change out of range.
    """
    if not parent.is_ready:
        raise ValidationError("Only a ready dataset can have a new version; wait for it to finish.", code="dataset")
    changes = _parsed_changes(parent, exclude, relabel)
    if upload is None and not changes["exclude"] and not changes["relabel"]:
        raise ValidationError("A new version needs a change: an archive of images to add, images to exclude or "
                              "images to relabel.", code="archive")
    relative, size, shown_name = "", 0, ""
    if upload is not None:
        relative, size = _store_upload(upload)
        shown_name = getattr(upload, "name", "") or "upload"
    try:
        reserved = 0
        if relative:
            try:
                kind = sniff_archive(storage.absolute(relative))
            except IngestError as exc:
                raise ValidationError(str(exc), code="archive") from None
            reserved = _room(relative, kind, size, team=parent.team, options=parent.options, parent=parent)
            storage.put(relative)
        with transaction.atomic():
            root_id = parent.root_id or parent.pk
            Dataset.objects.select_for_update().filter(pk=root_id).first()  # numbers one version at a time
            latest = Dataset.objects.filter(Q(pk=root_id) | Q(root_id=root_id)).aggregate(v=Max("version"))["v"]
            dataset = Dataset.objects.create(
                team=parent.team, created_by=user, name=parent.name, options={**parent.options, "labels": labels},
                upload_path=relative, upload_name=shown_name[:300], upload_bytes=size, parent=parent,
                root_id=root_id, version=(latest or parent.version) + 1, changes=changes, bytes=reserved)
    except BaseException:
        if relative:
            storage.remove(relative)
        raise
    broker.send_on_commit(INGEST_TASK, dataset.pk)
    return dataset


def dataset_delete(*, dataset: Dataset) -> None:
    if runs.dataset_in_use(dataset):
        raise ValidationError("This dataset is used by a run that is queued or running; cancel it first.")
    if dataset.children.filter(status=Dataset.Status.INGESTING).exists():
        raise ValidationError("A new version is being made from this dataset; delete it once that is ready.")
    paths = [dataset.pack_path, dataset.upload_path]
    dataset.delete()
    transaction.on_commit(lambda: [storage.remove(p) for p in paths])


def datasets_reap(*, now=None) -> int:
    """Fail the datasets whose ingest worker went silent (killed, out of memory); returns how many.

    Their task is not sent again: an archive that kills its decoder would kill the next worker too.
    The upload and any half-written pack are removed; the sentence says to upload again.
    """
    now = now or timezone.now()
    horizon = now - timezone.timedelta(seconds=settings.STALE_AFTER)
    silent = Dataset.objects.filter(status=Dataset.Status.INGESTING, progress__gt=0.0, heartbeat_at__lt=horizon)
    failed = 0
    for dataset in silent.only("pk", "heartbeat_at", "upload_path"):
        if Dataset.objects.filter(pk=dataset.pk, status=Dataset.Status.INGESTING,
                                  heartbeat_at=dataset.heartbeat_at).update(
                status=Dataset.Status.FAILED, error=INGEST_LOST_SENTENCE, upload_path="", bytes=0):
            log.warning("dataset %s: its ingest worker went silent; failed", dataset.pk)
            for path in [dataset.upload_path, *storage.packs_of(dataset.pk)]:
                storage.remove(path)
            failed += 1
    return failed


def datasets_resend_lost(*, now=None) -> int:
    """Send the ingest again for uploads nobody started whose message the broker lost; returns how many.

    A dataset still `ingesting` with no progress, created longer than DLSTUDIO_STALE_AFTER ago, and
    with no message in the `ingest` queue (nor held by a worker) gets a new one; one whose message is
    waiting behind other ingests is left alone. A duplicate is harmless: the claim takes it once.
    """
    now = now or timezone.now()
    horizon = now - timezone.timedelta(seconds=settings.STALE_AFTER)
    waiting = dict(Dataset.objects.filter(status=Dataset.Status.INGESTING, progress=0.0, created__lt=horizon)
                   .values_list("pk", "created"))
    lost = broker.lost_messages("ingest", INGEST_TASK, waiting) if waiting else []
    for pk in lost:
        log.warning("dataset %s is waiting for ingest but its message is not in the broker; sending it again", pk)
        broker.send_on_commit(INGEST_TASK, pk)
    return len(lost)


LEFTOVER_AGE = 3600  # seconds: a file this old that no row names belongs to no live upload


def datasets_sweep(*, now: float | None = None) -> dict:
    """Remove what an upload leaves when its web or worker process dies mid-way: the temporary file of a
    request that was never finished, and a stored upload no dataset names (the process died between
    storing it and creating the row), once nothing has written to them for an hour."""
    named = set(Dataset.objects.exclude(upload_path="").values_list("upload_path", flat=True))
    temporaries = storage.unchanged_for(TEMPORARY_UPLOADS, LEFTOVER_AGE, now=now)
    uploads = [path for path in storage.unchanged_for("uploads", LEFTOVER_AGE, now=now) if path not in named]
    for path in temporaries + uploads:
        storage.remove(path)
    return {"temporaries": len(temporaries), "uploads": len(uploads)}
