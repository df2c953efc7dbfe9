"""The LR finder inside a training worker: the engine's learning-rate range test of an experiment's config.

As with runs, the LRFinding row is the job's truth and the task only a doorbell (`dlstudio.jobs`): the
worker claims it with one conditional UPDATE (queued -> running), so a duplicate delivery finds it
taken; every later write is conditional on `running` (a test given up meanwhile stays given up); the
curve, the suggested rate or a one-sentence error end up on the row. The test takes seconds to
minutes and has no heartbeat: `services.GIVE_UP_AFTER` frees an experiment whose test never ended.
"""
import logging
import math

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.datasets.selectors import pack_of
from apps.runs.selectors import starting_checkpoint
from dlstudio import jobs, storage
from workers import engine

from .models import Experiment, LRFinding

log = logging.getLogger(__name__)

# fastai's sweep: seven decades below a usual rate to one far above it, where every network diverges.
START_LR, END_LR = 1e-7, 10.0
# 100 batches resolve the curve (about 12 points a decade); a small train split gets at most
# SWEEP_EPOCHS passes over it (but MIN_STEPS points), so the loss does not fall from memorising a
# handful of images, and the test stays a matter of seconds on a CPU.
MAX_STEPS, MIN_STEPS, SWEEP_EPOCHS = 100, 40, 5


def lr_finding_run(*, finding_id: int, worker: str) -> str:
    """Run the range test if this worker can claim it; returns what became of it (for the task's log)."""
    lease = jobs.claim(LRFinding, finding_id, where={"status": LRFinding.Status.QUEUED},
                       changes={"status": LRFinding.Status.RUNNING}, held={"status": LRFinding.Status.RUNNING})
    if lease is None:
        return "not claimed"
    finding = (LRFinding.objects.select_related("experiment__dataset", "experiment__weights_file")
               .filter(pk=finding_id).first())
    if finding is None:  # its experiment was deleted a moment ago
        return "gone"
    log.info("LR range test %s of experiment %s on %s", finding_id, finding.experiment_id, worker)
    try:
        with jobs.working(f"lr-finding-{finding_id}", lease, heartbeat=False):
            result = _sweep(finding.experiment)
    except ValidationError as exc:  # a reason, already a sentence, not to run the test at all
        return _fail(lease, exc.messages[0])
    except Exception as exc:
        return _fail(lease, jobs.failure_sentence(exc, doing="The LR range test", subject="the LR range test",
                                                  again="start it again"))
    lrs = [float(lr) for lr in result.lrs]
    if not lrs:
        return _fail(lease, "The loss was not a finite number even at the smallest learning rate; "
                            "check the dataset and the config.")
    lease.update(status=LRFinding.Status.SUCCEEDED, lrs=lrs, losses=[_finite(loss) for loss in result.losses],
                 suggested_lr=_finite(result.suggested_lr), error="", finished_at=timezone.now())
    return "succeeded"


def sweep_steps(*, train_images: int, batch_size: int) -> int:
    batches_per_epoch = max(1, train_images // batch_size)
    return max(MIN_STEPS, min(MAX_STEPS, SWEEP_EPOCHS * batches_per_epoch))


def _sweep(experiment: Experiment):
    dataset = experiment.dataset
    if dataset is None or not dataset.pack_path:
        raise ValidationError("The experiment's dataset was deleted; clone the experiment onto another dataset.")
    config = engine.TrainConfig.from_dict(experiment.config)
    pack = pack_of(dataset)
    train_images = len(pack.indices("train"))
    steps = sweep_steps(train_images=train_images, batch_size=min(config.batch_size, max(2, train_images)))
    imagenet = config.pretrained == "imagenet" and experiment.weights_file
    return engine.lr_range_test(
        pack=pack, config=config, start_lr=START_LR, end_lr=END_LR, steps=steps,
        init_checkpoint=starting_checkpoint(experiment.config),
        imagenet_weights=storage.local(experiment.weights_file.path) if imagenet else None)


def _fail(lease: jobs.Lease, message: str) -> str:
    lease.update(status=LRFinding.Status.FAILED, error=message, finished_at=timezone.now())
    return "failed"


def _finite(value) -> float | None:
    """NaN and infinity are not JSON: a point that is not a number is stored as null."""
    return float(value) if value is not None and math.isfinite(value) else None
