"""Writes for datasets: create from an upload, ingest into a pack (in a worker), delete."""
import logging
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from dlstudio.heartbeat import Heartbeat
from workers.engine import packing
from workers.engine.diskspace import disk_full
from workers.engine.packfile import open_pack

from . import storage
from .models import Dataset, DatasetClass, Image
from .selectors import dataset_in_use

log = logging.getLogger(__name__)

IMAGE_ROWS_BATCH = 2000


def upload_limits() -> packing.Limits:
    max_bytes = settings.MAX_UPLOAD_MB * 2**20
    # The archive itself may not be larger than the upload limit; what it expands to is bounded
    # separately, so a zip bomb cannot fill the disk or the memory of a worker.
    return packing.Limits(max_total_bytes=max(max_bytes * 4, 2**30))


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


def _check_archive(path: Path) -> None:
    try:
        packing.sniff_archive(path)
    except packing.IngestError as exc:
        raise ValidationError(str(exc), code="archive") from None


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
        _check_archive(storage.absolute(relative))
        dataset = Dataset.objects.create(team=team, created_by=user, name=name.strip(), options=options,
                                         upload_path=relative, upload_name=shown_name[:300], upload_bytes=size)
    except BaseException:
        storage.remove(relative)
        raise
    _enqueue(dataset.pk)
    return dataset


def _enqueue(dataset_id: int) -> None:
    from workers.broker import send_on_commit
    from workers.tasks import ingest_dataset

    send_on_commit(ingest_dataset, dataset_id)


def datasets_resend_lost(*, now=None) -> int:
    """Send `ingest_dataset` again for uploads nobody started whose message the broker lost.

    A dataset still `ingesting` with no progress, created longer than DLSTUDIO_STALE_AFTER ago, and
    with no message in the `ingest` queue (nor held by a worker) gets a new one; one whose message is
    waiting behind other ingests is left alone. A duplicate is harmless: the claim takes it once.
    """
    from workers import broker

    now = now or timezone.now()
    horizon = now - timezone.timedelta(seconds=settings.STALE_AFTER)
    waiting = dict(Dataset.objects.filter(status=Dataset.Status.INGESTING, progress=0.0, created__lt=horizon)
                   .values_list("pk", "created"))
    lost = broker.lost_messages("ingest", "workers.tasks.ingest_dataset", waiting) if waiting else []
    for pk in lost:
        log.warning("dataset %s is waiting for ingest but its message is not in the broker; sending it again", pk)
        _enqueue(pk)
    return len(lost)


INGEST_LOST_SENTENCE = ("The ingest stopped: its worker was killed or ran out of memory while decoding this "
                        "archive; upload it again, or a smaller one.")


def _claim(dataset_id: int) -> bool:
    """One conditional UPDATE: only one worker ingests a dataset, however often the task arrives."""
    return Dataset.objects.filter(pk=dataset_id, status=Dataset.Status.INGESTING, progress=0.0) \
        .update(progress=0.001, heartbeat_at=timezone.now()) == 1


class _Abandoned(Exception):
    """The reaper gave the dataset up while this worker was still at it (it was silent too long)."""


def dataset_ingest(*, dataset_id: int) -> None:
    """Decode the upload into a pack and record it; any failure leaves a `failed` dataset, no files."""
    if not _claim(dataset_id):
        return
    dataset = Dataset.objects.get(pk=dataset_id)
    pack_relative = storage.new_pack_path(dataset.pk)
    started = time.monotonic()
    mine = Dataset.objects.filter(pk=dataset_id, status=Dataset.Status.INGESTING)
    heartbeat = Heartbeat(f"dataset-{dataset_id}", lambda: bool(mine.update(heartbeat_at=timezone.now())))
    heartbeat.start()

    def on_progress(fraction: float) -> None:
        mine.update(progress=max(0.001, min(fraction, 0.99)))

    try:
        report = packing.build_pack(
            storage.absolute(dataset.upload_path), storage.absolute(pack_relative),
            packing.PackOptions(**dataset.options), limits=upload_limits(), on_progress=on_progress)
        _record(dataset, report, pack_relative, seconds=time.monotonic() - started)
    except _Abandoned:
        storage.remove(pack_relative)
    except packing.IngestError as exc:
        _fail(dataset, str(exc), pack_relative)
    except Exception as exc:
        log.exception("ingest of dataset %s failed", dataset_id)
        _fail(dataset, packing.DISK_FULL_SENTENCE if disk_full(exc) else
              "Ingest failed unexpectedly; the worker's log has the details.", pack_relative)
    finally:
        heartbeat.stop()
        storage.remove(dataset.upload_path)


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
                status=Dataset.Status.FAILED, error=INGEST_LOST_SENTENCE, upload_path=""):
            log.warning("dataset %s: its ingest worker went silent; failed", dataset.pk)
            for path in [dataset.upload_path, *storage.packs_of(dataset.pk)]:
                storage.remove(path)
            failed += 1
    return failed


@transaction.atomic
def _record(dataset: Dataset, report, pack_relative: str, *, seconds: float) -> None:
    pack = open_pack(report.pack_path)
    DatasetClass.objects.bulk_create(
        DatasetClass(dataset=dataset, index=i, name=c["name"], train=c["train"], val=c["val"], test=c["test"])
        for i, c in enumerate(report.counts))
    names, sizes = pack.names, pack.original_sizes
    rows = (Image(dataset=dataset, index=i, label=int(pack.labels[i]), split=int(pack.splits[i]),
                  name=names[i][:500], width=int(sizes[i][0]), height=int(sizes[i][1]))
            for i in range(len(pack)))
    Image.objects.bulk_create(rows, batch_size=IMAGE_ROWS_BATCH)
    if not Dataset.objects.filter(pk=dataset.pk, status=Dataset.Status.INGESTING).update(
        status=Dataset.Status.READY, progress=1.0, error="", pack_path=pack_relative,
        num_images=report.num_images, image_size=report.image_size, channels=report.channels,
        health=report.health, original_sizes=report.original_sizes, ingest_seconds=round(seconds, 2),
        upload_path=""):
        raise _Abandoned()  # rolls back the rows above


def _fail(dataset: Dataset, message: str, pack_relative: str) -> None:
    storage.remove(pack_relative)
    storage.remove(pack_relative + ".partial")  # the writer removes its own; this is for one that could not
    Dataset.objects.filter(pk=dataset.pk, status=Dataset.Status.INGESTING).update(
        status=Dataset.Status.FAILED, error=message, upload_path="")


def dataset_delete(*, dataset: Dataset) -> None:
    if dataset_in_use(dataset):
        raise ValidationError("This dataset is used by a run that is queued or running; cancel it first.")
    paths = [dataset.pack_path, dataset.upload_path]
    dataset.delete()
    transaction.on_commit(lambda: [storage.remove(p) for p in paths])
