"""A run's best weights scored on another version of its dataset, inside a training worker.

Claimed like an LR range test (`dlstudio.jobs`): one conditional UPDATE (queued -> running), every
later write conditional on `running`, a one-sentence error on failure. The version may hold the same
classes in another order (classes added by a version go last): its labels are mapped to the order the
weights were trained with before the engine scores them.
"""
import dataclasses
import logging

import numpy as np
from django.utils import timezone

from apps.datasets.selectors import pack_of
from dlstudio import jobs, storage
from workers import engine

from .models import Evaluation, VersionEvaluation

log = logging.getLogger(__name__)


def version_evaluation_run(*, evaluation_id: int, worker: str) -> str:
    lease = jobs.claim(VersionEvaluation, evaluation_id, where={"status": VersionEvaluation.Status.QUEUED},
                       changes={"status": VersionEvaluation.Status.RUNNING},
                       held={"status": VersionEvaluation.Status.RUNNING})
    if lease is None:
        return "not claimed"
    evaluation = VersionEvaluation.objects.select_related("run", "dataset").filter(pk=evaluation_id).first()
    if evaluation is None:
        return "gone"
    log.info("evaluating run %s on dataset %s on %s", evaluation.run_id, evaluation.dataset_id, worker)
    try:
        with jobs.working(f"evaluation-{evaluation_id}", lease, heartbeat=False):
            report = _score(evaluation)
    except Exception as exc:
        lease.update(status=VersionEvaluation.Status.FAILED, finished_at=timezone.now(), error=jobs.failure_sentence(
            exc, doing="The evaluation", subject="the evaluation", again="ask for it again"))
        return "failed"
    if report is None:
        lease.update(status=VersionEvaluation.Status.FAILED, finished_at=timezone.now(),
                     error="That version has no val or test images to evaluate on.")
        return "failed"
    lease.update(status=VersionEvaluation.Status.SUCCEEDED, finished_at=timezone.now(), error="",
                 **{key: report[key] for key in Evaluation.REPORT})
    return "succeeded"


def _score(evaluation: VersionEvaluation) -> dict | None:
    run, dataset = evaluation.run, evaluation.dataset
    if dataset is None or not dataset.pack_path:
        raise engine.PackError("the version was deleted")
    checkpoint = storage.local(run.best_checkpoint)
    classes = list(engine.load_checkpoint(checkpoint)["classes"])
    return engine.evaluate_checkpoint(checkpoint=checkpoint, pack=in_class_order(pack_of(dataset), classes))


def in_class_order(pack, classes: list[str]):
    """The pack with its labels numbered in `classes`' order (the same names, perhaps in another order)."""
    if pack.classes == classes:
        return pack
    position = np.array([classes.index(name) for name in pack.classes], dtype=np.int64)
    return dataclasses.replace(pack, labels=position[pack.labels], meta={**pack.meta, "classes": classes},
                               _extras={})
