"""Reads of experiments and their LR range tests, always scoped to the user's teams (a foreign id is a 404);
and the summary of the network a config builds (before training, or a run's)."""
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, QuerySet
from django.http import Http404

from apps.datasets.selectors import number_of_classes
from apps.teams.selectors import scoped
from dlstudio import storage
from workers import engine

from .models import Experiment, LRFinding

ACTIVE_FINDINGS = (LRFinding.Status.QUEUED, LRFinding.Status.RUNNING)


def experiments_for(user) -> QuerySet[Experiment]:
    return scoped(Experiment.objects.all(), user).select_related("dataset", "team", "created_by")


def experiment_for(user, experiment_id) -> Experiment:
    experiment = experiments_for(user).filter(pk=experiment_id).first()
    if experiment is None:
        raise Http404("No such experiment.")
    return experiment


def experiments_with_results(user, team) -> QuerySet[Experiment]:
    """The team's experiments, each with how many runs it has and the best validation accuracy of any."""
    return (experiments_for(user).filter(team=team)
            .annotate(run_count=Count("runs"), best=Max("runs__best_val_acc")))


def latest_lr_finding(experiment: Experiment) -> LRFinding | None:
    return experiment.lr_findings.first()


def weights_file_in_use(weights_file) -> bool:
    """True while a queued or running LR range test of an experiment reads the weights file."""
    return LRFinding.objects.filter(experiment__weights_file=weights_file, status__in=ACTIVE_FINDINGS).exists()


def model_summary_of(*, config: dict, dataset) -> dict:
    """The summary of the network `config` builds for `dataset`'s images (docs/ARCHITECTURE.md, "Model
    summary"): a dataset read through the user's teams, a config validated like the experiment form's."""
    if not dataset.is_ready:
        raise ValidationError("That dataset is not ready yet; its image size is known once its ingest finishes.",
                              code="dataset")
    return _summary(config, num_classes=number_of_classes(dataset.pk), channels=dataset.channels,
                    image_size=dataset.image_size)


def model_summary_of_run(run) -> dict | None:
    """The summary of the network a run trains (or trained): its config, for the images of its dataset or,
    the dataset deleted, those its checkpoint records. None when neither is left to say."""
    if run.dataset is not None and run.dataset.is_ready:
        shape = {"num_classes": number_of_classes(run.dataset_id), "channels": run.dataset.channels,
                 "image_size": run.dataset.image_size}
    else:
        checkpoint = run.best_checkpoint or run.last_checkpoint
        try:
            shape = engine.checkpoint_input(storage.local(checkpoint)) if checkpoint else None
        except (engine.CheckpointError, FileNotFoundError):  # gone from storage, or damaged: refused unread
            shape = None
    return _summary(run.config, **shape) if shape else None


def _summary(config: dict, **shape) -> dict:
    try:
        return engine.model_summary(config, **shape)
    except engine.ConfigError as exc:
        raise ValidationError(exc.message, code=f"config.{exc.field}") from None
