"""The LR finder: the engine's learning-rate range test of an experiment's config, run by a training worker.

As with runs, the LRFinding row is the source of truth and the task only a doorbell: `lr_finding_start`
queues the row and the task once it is committed; the worker claims it with one conditional UPDATE
(queued → running), so a duplicate delivery finds it taken and returns; the curve, the suggested
rate or a one-sentence error are written on the row.
"""
import gc
import logging
import math
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.datasets import storage
from apps.teams.models import Membership
from apps.teams.permissions import require_role

from .models import Experiment, LRFinding, Run

log = logging.getLogger(__name__)

# fastai's sweep: seven decades below a usual rate to one far above it, where every network diverges.
START_LR, END_LR = 1e-7, 10.0
# 100 batches resolve the curve (about 12 points a decade); a small train split gets at most
# SWEEP_EPOCHS passes over it (but MIN_STEPS points), so the loss does not fall from memorising a
# handful of images, and the test stays a matter of seconds on a CPU.
MAX_STEPS, MIN_STEPS, SWEEP_EPOCHS = 100, 40, 5
ACTIVE = (LRFinding.Status.QUEUED, LRFinding.Status.RUNNING)
# The row has no heartbeat: a test that has not finished this long after it was queued (its worker was
# killed, or it waited behind long runs) no longer blocks a new one. It takes seconds to minutes.
GIVE_UP_AFTER = timedelta(hours=1)


@transaction.atomic
def lr_finding_start(*, experiment: Experiment, user) -> LRFinding:
    """A queued range test of the experiment's config (editors and owners); one at a time per experiment."""
    require_role(user, experiment.team, Membership.Role.EDITOR)
    dataset = experiment.dataset
    if dataset is None or not dataset.is_ready:
        raise ValidationError("The experiment's dataset is gone or not ready; pick another dataset.", code="dataset")
    # Lock the experiment so two clicks at once cannot both find no test active (PostgreSQL; SQLite
    # serialises writes anyway).
    Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
    now = timezone.now()
    experiment.lr_findings.filter(status__in=ACTIVE, created__lt=now - GIVE_UP_AFTER).update(
        status=LRFinding.Status.FAILED, finished_at=now,
        error="It had not finished an hour after it was queued (its worker may have stopped), so it was given up.")
    if experiment.lr_findings.filter(status__in=ACTIVE).exists():
        raise ValidationError("An LR range test of this experiment is already queued or running; "
                              "wait for it to finish.")
    finding = LRFinding.objects.create(experiment=experiment, team=experiment.team, created_by=user)
    _enqueue(finding.pk)
    return finding


def _enqueue(finding_id: int) -> None:
    from workers.broker import send_on_commit
    from workers.tasks import train_lr_range_test

    send_on_commit(train_lr_range_test, finding_id)


class _Refusal(Exception):
    """A reason, already a sentence, not to run the test at all."""


def lr_finding_run(*, finding_id: int, worker: str) -> str:
    """Run the range test if this worker can claim it; returns what became of it (for the task's log)."""
    if not LRFinding.objects.filter(pk=finding_id, status=LRFinding.Status.QUEUED).update(
            status=LRFinding.Status.RUNNING):
        return "not claimed"
    # Every later write is conditional on `running`: a test given up meanwhile stays given up.
    mine = LRFinding.objects.filter(pk=finding_id, status=LRFinding.Status.RUNNING)
    finding = (LRFinding.objects.select_related("experiment__dataset", "experiment__weights_file")
               .filter(pk=finding_id).first())
    if finding is None:  # its experiment was deleted a moment ago
        return "gone"
    log.info("LR range test %s of experiment %s on %s", finding_id, finding.experiment_id, worker)
    try:
        result = _sweep(finding.experiment)
    except _Refusal as exc:
        return _fail(mine, str(exc))
    except Exception as exc:  # every failure ends the test with a sentence
        return _fail(mine, _failure_sentence(exc))
    finally:
        _release_memory()
    lrs = [float(lr) for lr in result.lrs]
    if not lrs:
        return _fail(mine, "The loss was not a finite number even at the smallest learning rate; "
                           "check the dataset and the config.")
    losses = [_finite(loss) for loss in result.losses]
    mine.update(status=LRFinding.Status.SUCCEEDED, lrs=lrs, losses=losses, suggested_lr=_finite(result.suggested_lr),
                error="", finished_at=timezone.now())
    return "succeeded"


def sweep_steps(*, train_images: int, batch_size: int) -> int:
    batches_per_epoch = max(1, train_images // batch_size)
    return max(MIN_STEPS, min(MAX_STEPS, SWEEP_EPOCHS * batches_per_epoch))


def _sweep(experiment: Experiment):
    from workers import engine
    from workers.engine.packfile import open_pack

    dataset = experiment.dataset
    if dataset is None or not dataset.pack_path:
        raise _Refusal("The experiment's dataset was deleted; clone the experiment onto another dataset.")
    config = engine.TrainConfig.from_dict(experiment.config)
    pack = open_pack(storage.absolute(dataset.pack_path))
    train_images = len(pack.indices("train"))
    steps = sweep_steps(train_images=train_images, batch_size=min(config.batch_size, max(2, train_images)))
    return engine.lr_range_test(
        pack=pack, config=config, start_lr=START_LR, end_lr=END_LR, steps=steps,
        init_checkpoint=_start_checkpoint(experiment, config.pretrained),
        imagenet_weights=(storage.absolute(experiment.weights_file.path)
                          if config.pretrained == "imagenet" and experiment.weights_file else None))


def _start_checkpoint(experiment: Experiment, pretrained):
    """The best checkpoint of the run that `pretrained: {"run": id}` names, as a run would start from it."""
    if not isinstance(pretrained, dict):
        return None
    parent = Run.objects.filter(pk=pretrained["run"], team_id=experiment.team_id).first()
    if parent is None or not parent.checkpoint_dir:
        raise _Refusal(f"Run {pretrained['run']}, whose weights this experiment starts from, is gone; "
                       "clone the experiment and start from something else.")
    return storage.absolute(parent.checkpoint_dir) / "best.pt"


def _fail(mine, message: str) -> str:
    mine.update(status=LRFinding.Status.FAILED, error=message, finished_at=timezone.now())
    return "failed"


def _failure_sentence(exc: Exception) -> str:
    from workers import engine
    from workers.engine.packfile import PackError

    text = str(exc).strip()
    if "out of memory" in text.lower() or type(exc).__name__ == "OutOfMemoryError":
        return "The device ran out of memory; lower batch_size or image size, or pick a smaller arch."
    if isinstance(exc, (engine.ConfigError, engine.CheckpointError, engine.WeightsNotFound)):
        return _sentence(text)  # the engine's own: which weights file to put where, which field is wrong
    if isinstance(exc, (PackError, FileNotFoundError)):
        return "The dataset's packed images or a starting checkpoint are missing or damaged; upload the dataset again."
    log.exception("LR range test failed")
    return _sentence(f"The LR range test failed with {type(exc).__name__}: {text[:300]}")


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _finite(value) -> float | None:
    """NaN and infinity are not JSON: a point that is not a number is stored as null."""
    return float(value) if value is not None and math.isfinite(value) else None


def _release_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
