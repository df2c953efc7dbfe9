"""Reads of experiments and their LR range tests, always scoped to the user's teams (a foreign id is a 404)."""
from django.db.models import Count, Max, QuerySet
from django.http import Http404

from apps.teams.selectors import scoped

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
