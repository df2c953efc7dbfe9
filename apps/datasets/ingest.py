"""An ingest inside a worker: claim the dataset, decode the upload into a pack (or, for a new
version, derive its pack from its parent's), record it, let go.

Runs in the `ingest` worker through the job skeleton of `dlstudio.jobs`: one conditional UPDATE
claims the row, a heartbeat proves the worker alive, every write afterwards is conditional on the
row still being `ingesting` (the reaper may have failed it meanwhile), and any failure leaves a
`failed` dataset with one sentence and no files.
"""
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dlstudio import jobs, storage
from workers.engine import IngestError, Limits, PackOptions, build_pack, derive_pack, open_pack

from .models import Dataset, DatasetClass, Image

IMAGE_ROWS_BATCH = 2000


class _Abandoned(Exception):
    """The reaper gave the dataset up while this worker was still at it (it was silent too long)."""


def upload_limits() -> Limits:
    max_bytes = settings.MAX_UPLOAD_MB * 2**20
    # The archive itself may not be larger than the upload limit; what it expands to is bounded
    # separately, so a zip bomb cannot fill the disk or the memory of a worker.
    return Limits(max_total_bytes=max(max_bytes * 4, 2**30))


def dataset_ingest(*, dataset_id: int) -> None:
    """Decode the upload into a pack and record it; any failure leaves a `failed` dataset, no files."""
    lease = jobs.claim(Dataset, dataset_id, where={"status": Dataset.Status.INGESTING, "progress": 0.0},
                       changes={"progress": 0.001, "heartbeat_at": timezone.now()},
                       held={"status": Dataset.Status.INGESTING})
    if lease is None:
        return
    dataset = Dataset.objects.get(pk=dataset_id)
    pack_relative = storage.new_pack_path(dataset.pk)
    started = time.monotonic()
    try:
        with jobs.working(f"dataset-{dataset_id}", lease):
            report = _pack(dataset, pack_relative,
                           on_progress=lambda fraction: lease.update(progress=max(0.001, min(fraction, 0.99))))
            _record(dataset, lease, report, pack_relative, seconds=time.monotonic() - started)
    except _Abandoned:
        storage.remove(pack_relative)
    except Exception as exc:
        storage.remove(pack_relative)
        storage.remove(pack_relative + ".partial")  # the writer removes its own; this is for one that could not
        lease.update(status=Dataset.Status.FAILED, upload_path="", error=jobs.failure_sentence(
            exc, doing="Ingest", subject="the ingest", again="upload the archive again"))
    finally:
        if dataset.upload_path:
            storage.remove(dataset.upload_path)


def _pack(dataset: Dataset, pack_relative: str, *, on_progress):
    options, target = PackOptions(**dataset.options), storage.absolute(pack_relative)
    if dataset.parent_id is None and not dataset.changes:
        return build_pack(storage.absolute(dataset.upload_path), target, options, limits=upload_limits(),
                          on_progress=on_progress)
    parent = Dataset.objects.filter(pk=dataset.parent_id, status=Dataset.Status.READY).first()
    if parent is None or not parent.pack_path:
        raise IngestError("The version this one was made from was deleted before it was ready; make the change "
                          "again on another version.")
    changes = dataset.changes
    return derive_pack(storage.absolute(parent.pack_path), target, exclude=changes.get("exclude", []),
                       relabel={int(k): v for k, v in changes.get("relabel", {}).items()},
                       addition=storage.absolute(dataset.upload_path) if dataset.upload_path else None,
                       options=options, limits=upload_limits(), on_progress=on_progress)


@transaction.atomic
def _record(dataset: Dataset, lease: jobs.Lease, report, pack_relative: str, *, seconds: float) -> None:
    pack = open_pack(report.pack_path)
    DatasetClass.objects.bulk_create(
        DatasetClass(dataset=dataset, index=i, name=c["name"], train=c["train"], val=c["val"], test=c["test"])
        for i, c in enumerate(report.counts))
    names, sizes = pack.names, pack.original_sizes
    rows = (Image(dataset=dataset, index=i, label=int(pack.labels[i]), split=int(pack.splits[i]),
                  name=names[i][:500], width=int(sizes[i][0]), height=int(sizes[i][1]))
            for i in range(len(pack)))
    Image.objects.bulk_create(rows, batch_size=IMAGE_ROWS_BATCH)
    if not lease.update(status=Dataset.Status.READY, progress=1.0, error="", pack_path=pack_relative,
                        num_images=report.num_images, image_size=report.image_size, channels=report.channels,
                        health={**report.health, "decoded": report.decoded}, original_sizes=report.original_sizes,
                        ingest_seconds=round(seconds, 2), upload_path="", content_hash=report.content_hash):
        raise _Abandoned()  # rolls back the rows above
