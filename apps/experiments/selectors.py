"""Reads of experiments and runs, always scoped to the user's teams (a foreign id is a 404)."""
from django.db.models import QuerySet
from django.http import Http404

from apps.teams.selectors import scoped

from .models import EpochMetric, Experiment, Run

RUN_ORDERINGS = {
    "-created": ("-created", "-id"), "created": ("created", "id"),
    "-best_val_acc": ("-best_val_acc", "-id"), "best_val_acc": ("best_val_acc", "id"),
    "-test_acc": ("-test_acc", "-id"),
}


def experiments_for(user) -> QuerySet[Experiment]:
    return scoped(Experiment.objects.all(), user).select_related("dataset", "team", "created_by")


def experiment_for(user, experiment_id) -> Experiment:
    experiment = experiments_for(user).filter(pk=experiment_id).first()
    if experiment is None:
        raise Http404("No such experiment.")
    return experiment


def runs_for(user) -> QuerySet[Run]:
    return scoped(Run.objects.all(), user).select_related("experiment", "dataset", "team", "created_by")


def run_for(user, run_id) -> Run:
    run = runs_for(user).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    return run


def run_columns_for(user, run_id, *columns: str) -> Run:
    """The run scoped exactly like `run_for` (a foreign or unknown id is a 404), with only `columns` read.

    For the endpoints called many times a second (the metrics poll, predict): `run_for` selects the run
    with its experiment, dataset, team and creator, and building that query costs about 1 ms of Python
    per request, more than a small model's forward pass or the rest of a poll.
    """
    rows = list(scoped(Run.objects.only("pk", *columns), user).filter(pk=run_id).order_by()[:1])
    if not rows:
        raise Http404("No such run.")
    return rows[0]


def runs_filtered(user, *, team=None, status=None, dataset=None, experiment=None, arch=None, creator=None,
                  tag=None, ordering="-created") -> QuerySet[Run]:
    runs = runs_for(user)
    if team is not None:
        runs = runs.filter(team=team)
    if status:
        runs = runs.filter(status=status)
    if dataset:
        runs = runs.filter(dataset_id=dataset)
    if experiment:
        runs = runs.filter(experiment_id=experiment)
    if arch:
        runs = runs.filter(arch=arch)
    if creator:
        runs = runs.filter(created_by__username=creator)
    if tag:
        runs = runs.filter(tags__contains=[tag]) if _json_contains_supported() else runs.filter(tags__icontains=f'"{tag}"')
    order = RUN_ORDERINGS.get(ordering, RUN_ORDERINGS["-created"])
    if order[0].lstrip("-") in ("best_val_acc", "test_acc"):
        runs = runs.exclude(**{f"{order[0].lstrip('-')}__isnull": True})
    return runs.order_by(*order)


def _json_contains_supported() -> bool:
    from django.db import connection

    return connection.features.supports_json_field_contains


METRIC_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s")


def metrics_of(run: Run, *, after: int = 0) -> list[dict]:
    rows = EpochMetric.objects.filter(run=run, epoch__gt=after).order_by("epoch").values(*METRIC_FIELDS)
    return list(rows)


def metrics_of_runs(runs: list[Run]) -> dict[int, list[dict]]:
    """{run id: metrics_of(run)} for a few runs in one query (the compare view), not one per run."""
    by_run: dict[int, list[dict]] = {run.pk: [] for run in runs}
    rows = (EpochMetric.objects.filter(run_id__in=list(by_run)).order_by("run_id", "epoch")
            .values_list("run_id", *METRIC_FIELDS))
    for run_id, *values in rows:
        by_run[run_id].append(dict(zip(METRIC_FIELDS, values)))
    return by_run


def queue_of(user, team) -> QuerySet[Run]:
    """The team's queued and running runs, oldest first: what the workers will do next."""
    return runs_for(user).filter(team=team, status__in=Run.ACTIVE_STATUSES).order_by("created", "id")
