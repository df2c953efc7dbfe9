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

import os
from pathlib import Path

from apps.teams.selectors import team_usage
from dlstudio import jobs, storage
from workers.engine import (
    IngestError, Limits, PackOptions, build_pack, derive_pack, estimate_pack, open_pack, upscale_sentence,
)

from .models import Dataset, DatasetClass, Image

IMAGE_ROWS_BATCH = 2000


class _Abandoned(Exception):
    """The reaper gave the dataset up while this worker was still at it (it was silent too long)."""


def upload_limits() -> Limits:
    max_bytes = settings.MAX_UPLOAD_MB * 2**20
    # The archive itself may not be larger than the upload limit; what it expands to is bounded
    # separately, so a zip bomb cannot fill the disk or the memory of a worker.
    return Limits(max_total_bytes=max(max_bytes * 4, 2**30))


def room_for(path: Path, *, team, options: dict, upload_bytes: int, parent: Dataset | None = None,
             headers: int | None, already: int = 0) -> int:
    """The bytes the upload at `path` will take (its pack, estimated from the listing, and the upload
    itself until the ingest ends); raises IngestError (`field` set) when its images would be enlarged far
    beyond their size without `allow_upscale`, or when the team's quota has no room for it.

    `headers`: how many images' headers to read for the upscale check (None: all). `already`: what the
    team's usage already counts for this upload (its reservation, in the ingest job)."""
    if parent is not None:  # a version's added images take its parent's size and channels
        estimate = estimate_pack(path, image_size=parent.image_size, channels=parent.channels,
                                 limits=upload_limits(), headers=0)
    else:
        upscale_matters = options.get("image_size") and not options.get("allow_upscale")
        estimate = estimate_pack(path, image_size=options.get("image_size"), color=options.get("color", "auto"),
                                 limits=upload_limits(), headers=headers if upscale_matters else 0)
        refusal = upscale_matters and upscale_sentence(estimate, options["image_size"])
        if refusal:
            raise IngestError(refusal, field="image_size")
    usage, adding = team_usage(team), estimate.bytes + upload_bytes
    if usage.over_by(adding, already=already):
        raise IngestError(usage.refusal(estimate.bytes, what="This upload would make a pack of", already=already,
                                        change="delete datasets, runs or weights files" + (
                                            "" if parent else ", or choose a smaller image_size")), field="archive")
    return adding


def own_bytes(pack: Path, parent: Path | None = None) -> int:
    """The bytes of the files of `pack` that are not hard links to those of the `parent` pack (a version's
    shared segments are counted once, by the version that wrote them)."""
    def stats(folder):
        return [os.lstat(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names]
    shared = {(s.st_dev, s.st_ino) for s in stats(parent)} if parent else set()
    return sum(s.st_size for s in stats(pack) if (s.st_dev, s.st_ino) not in shared)


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
            _recheck_room(dataset)
            report = _pack(dataset, pack_relative,
                           on_progress=lambda fraction: lease.update(progress=max(0.001, min(fraction, 0.99))))
            storage.put(pack_relative)  # in the store before the row names it
            _record(dataset, lease, report, pack_relative, seconds=time.monotonic() - started)
    except _Abandoned:
        storage.remove(pack_relative)
    except Exception as exc:
        storage.remove(pack_relative)
        storage.remove(pack_relative + ".partial")  # the writer removes its own; this is for one that could not
        lease.update(status=Dataset.Status.FAILED, upload_path="", bytes=0, error=jobs.failure_sentence(
            exc, doing="Ingest", subject="the ingest", again="upload the archive again"))
    finally:
        if dataset.upload_path:
            storage.remove(dataset.upload_path)


def _recheck_room(dataset: Dataset) -> None:
    """The upload's checks again, on every image's header this time, and against the quota as it is now
    (another upload may have been accepted meanwhile)."""
    if dataset.upload_path:
        room_for(storage.local(dataset.upload_path), team=dataset.team, options=dataset.options,
                 upload_bytes=dataset.upload_bytes, parent=dataset.parent, headers=None, already=dataset.bytes)


def _pack(dataset: Dataset, pack_relative: str, *, on_progress):
    options, target = PackOptions(**dataset.options), storage.absolute(pack_relative)
    if dataset.parent_id is None and not dataset.changes:
        return build_pack(storage.local(dataset.upload_path), target, options, limits=upload_limits(),
                          on_progress=on_progress)
    parent = Dataset.objects.filter(pk=dataset.parent_id, status=Dataset.Status.READY).first()
    if parent is None or not parent.pack_path:
        raise IngestError("The version this one was made from was deleted before it was ready; make the change "
                          "again on another version.")
    changes = dataset.changes
    return derive_pack(storage.local(parent.pack_path), target, exclude=changes.get("exclude", []),
                       relabel={int(k): v for k, v in changes.get("relabel", {}).items()},
                       addition=storage.local(dataset.upload_path) if dataset.upload_path else None,
                       options=options, limits=upload_limits(), on_progress=on_progress)


@transaction.atomic
def _record(dataset: Dataset, lease: jobs.Lease, report, pack_relative: str, *, seconds: float) -> None:
    pack_folder = storage.local(pack_relative)
    pack = open_pack(pack_folder)
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
                        ingest_seconds=round(seconds, 2), upload_path="", content_hash=report.content_hash,
                        bytes=own_bytes(pack_folder, _parent_pack(dataset))):
        raise _Abandoned()  # rolls back the rows above


def _parent_pack(dataset: Dataset) -> Path | None:
    parent = dataset.parent
    return storage.local(parent.pack_path) if parent is not None and parent.pack_path else None
