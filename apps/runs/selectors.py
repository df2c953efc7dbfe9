"""Reads of runs, always scoped to the user's teams (a foreign id is a 404)."""
import re
import sys
import sysconfig
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Case, FloatField, QuerySet, When
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast
from django.db.models.lookups import In
from django.http import Http404
from django.utils import timezone

from apps.datasets.selectors import number_of_classes
from apps.teams.permissions import can_edit
from apps.teams.selectors import scoped, teams_for
from dlstudio import storage
from workers.engine import METRIC_KEYS

from . import search
from .diagnosis import diagnose
from .models import EpochMetric, Evaluation, Run

RUN_ORDERINGS = {
    "-created": ("-created", "-id"), "created": ("created", "id"),
    "-best_val_acc": ("-best_val_acc", "-id"), "best_val_acc": ("best_val_acc", "id"),
    "-test_acc": ("-test_acc", "-id"),
}


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
                  tag=None, ordering="-created", runs=None) -> QuerySet[Run]:
    runs = runs_for(user) if runs is None else runs
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
        runs = (runs.filter(tags__contains=[tag]) if connection.features.supports_json_field_contains
                else runs.filter(tags__icontains=f'"{tag}"'))
    order = RUN_ORDERINGS.get(ordering, RUN_ORDERINGS["-created"])
    if order[0].lstrip("-") in ("best_val_acc", "test_acc"):
        runs = runs.exclude(**{f"{order[0].lstrip('-')}__isnull": True})
    return runs.order_by(*order)


SORTABLE_RESULTS = ("created", "best_val_acc", "test_acc", "epochs", "duration")


def ordered_runs(runs: QuerySet[Run], ordering: str) -> QuerySet[Run]:
    """`runs` in `ordering`: a numeric result or `config.<key>`, `-` first for descending, the id breaking
    ties (the keyset pages need a unique key). Runs without that value are left out, as the sorted
    list always did. ValidationError (code `ordering`) for anything else."""
    name = ordering.lstrip("-")
    sign = "-" if ordering.startswith("-") else ""
    if name in ("created", "best_val_acc", "test_acc", "epochs"):
        field = name
        if name in ("best_val_acc", "test_acc"):
            runs = runs.exclude(**{f"{name}__isnull": True})
    elif name == "duration":
        field = "sort_value"
        runs = runs.annotate(sort_value=search.duration_expression()).exclude(sort_value__isnull=True)
    elif name.startswith("config.") and all(search._KEY_PART.match(p) for p in name.split(".")[1:]) \
            and name.count(".") <= 8:
        path = tuple(name.split(".")[1:])
        number = Cast(KeyTransform(path[-1], _key_of("config", path[:-1])), FloatField())
        runs = runs.annotate(sort_value=Case(
            When(In(search.JSONTypeOf("config", path), list(search.JSON_NUMBER_TYPES)), then=number),
            default=None, output_field=FloatField())).exclude(sort_value__isnull=True)
        field = "sort_value"
    else:
        raise ValidationError(f"Sort by one of {', '.join(SORTABLE_RESULTS)} or config.<key> (a leading - for "
                              f"descending), not {ordering[:60]!r}.", code="ordering")
    return runs.order_by(f"{sign}{field}", f"{sign}id")


def _key_of(column: str, path: tuple[str, ...]):
    expression = column
    for part in path:
        expression = KeyTransform(part, expression)
    return expression


def _runs_in_teams_of(user, team=None) -> QuerySet[Run]:
    """`runs_for`, with the user's teams named by id (one small query first) rather than joined: then
    `team_id IN (1, 2)` lets the database read a page in the order of an index (team, sort key, id) or
    (created, id) and stop after it, where the join made it sort every run of the user's teams."""
    team_ids = list(teams_for(user).order_by().values_list("pk", flat=True))
    if team is not None:  # one team of the user's (or none): an equality, which the indexes begin with
        team_ids = [team.pk] if team.pk in team_ids else []
    return (Run.objects.filter(team_id__in=team_ids)
            .select_related("experiment", "dataset", "team", "created_by"))


def runs_searched(user, *, team=None, query: str = "", ordering: str = "-created", **filters) -> QuerySet[Run]:
    """`runs_filtered` narrowed by a search (apps/runs/search.py) and put in any numeric order, within the
    user's teams always. A bad query raises SearchError."""
    runs = runs_filtered(user, runs=_runs_in_teams_of(user, team), **filters)
    if query:
        runs = runs.filter(search.search_q(query))
    return ordered_runs(runs, ordering or "-created")


def runs_of_experiment(experiment) -> QuerySet[Run]:
    """Its runs, newest first (the experiment itself was read through the user's teams)."""
    return experiment.runs.select_related("created_by").order_by("-created", "-id")


def succeeded_runs_of(user, team) -> QuerySet[Run]:
    """What an experiment can start from (`pretrained: {"run": id}`), newest first."""
    return runs_for(user).filter(team=team, status=Run.Status.SUCCEEDED).order_by("-created", "-id")


def queue_of(user, team) -> QuerySet[Run]:
    """The team's queued and running runs, oldest first: what the workers will do next."""
    return runs_for(user).filter(team=team, status__in=Run.ACTIVE_STATUSES).order_by("created", "id")


def recent_runs_of(user, team) -> QuerySet[Run]:
    return runs_for(user).filter(team=team).order_by("-created", "-id")


def metrics_of(run: Run, *, after: int = 0) -> list[dict]:
    return list(EpochMetric.objects.filter(run=run, epoch__gt=after).order_by("epoch").values(*METRIC_KEYS))


def metrics_of_runs(runs: list[Run]) -> dict[int, list[dict]]:
    """{run id: metrics_of(run)} for a few runs in one query (the compare view), not one per run."""
    by_run: dict[int, list[dict]] = {run.pk: [] for run in runs}
    rows = (EpochMetric.objects.filter(run_id__in=list(by_run)).order_by("run_id", "epoch")
            .values_list("run_id", *METRIC_KEYS))
    for run_id, *values in rows:
        by_run[run_id].append(dict(zip(METRIC_KEYS, values)))
    return by_run


def trials_of(sweep_id: int) -> list[Run]:
    """The runs of a sweep, in trial order (a sweep is scoped already; its runs are its team's)."""
    return list(Run.objects.filter(sweep_id=sweep_id).select_related("dataset").order_by("trial_number", "id"))


def curves_of(run_ids: list[int], metric: str) -> dict[int, dict[int, float | None]]:
    """{run id: {epoch: metric}} for many runs in one query (a sweep's trials)."""
    curves: dict[int, dict[int, float | None]] = {pk: {} for pk in run_ids}
    for run_id, epoch, value in (EpochMetric.objects.filter(run_id__in=run_ids).order_by("run_id", "epoch")
                                 .values_list("run_id", "epoch", metric)):
        curves[run_id][epoch] = value
    return curves


def diagnosis_of(run: Run, metrics: list[dict]) -> dict:
    """What the run's curves say (`diagnosis.diagnose`), judged against chance for its classes."""
    return diagnose(metrics, num_classes=number_of_classes(run.dataset_id) if run.dataset_id else None)


def from_scratch_beside(user, run: Run) -> Run | None:
    """For a run that started from other weights: the latest finished run on its dataset that did not,
    to compare what the starting weights bought."""
    if not run.config.get("pretrained") or run.dataset_id is None:
        return None
    return (runs_filtered(user, dataset=run.dataset_id, status=Run.Status.SUCCEEDED)
            .filter(config__pretrained=None).exclude(pk=run.pk).first())


def evaluation_of(run: Run) -> Evaluation | None:
    return Evaluation.objects.filter(run=run).first()


def dataset_in_use(dataset) -> bool:
    """True while a run that trains on the dataset is queued or running."""
    return Run.objects.filter(dataset=dataset, status__in=Run.ACTIVE_STATUSES).exists()


def weights_file_in_use(weights_file) -> bool:
    """True while a queued or running run reads the weights file."""
    return Run.objects.filter(weights_file=weights_file, status__in=Run.ACTIVE_STATUSES).exists()


def starting_run(user, config: dict) -> Run | None:
    """The run whose best weights `pretrained: {"run": id}` names, when `user` can see it and it has
    weights; None when the config starts from elsewhere. ValidationError (code `config.pretrained`)
    otherwise. Checked whenever something that will read those weights is started."""
    pretrained = config.get("pretrained")
    if not isinstance(pretrained, dict):
        return None
    parent = runs_for(user).filter(pk=pretrained.get("run")).first()
    if parent is None:
        raise ValidationError(f"There is no run {pretrained.get('run')} in your teams to start from.",
                              code="config.pretrained")
    if parent.status != Run.Status.SUCCEEDED:
        raise ValidationError(f"Run {parent.pk} has not succeeded, so it has no weights to start from.",
                              code="config.pretrained")
    return parent


def best_checkpoint_path(run: Run) -> Path | None:
    """Where the run's best weights are on this machine: the checkpoint its row names; None before it has one
    (a path to nothing when storage lost it: callers say so)."""
    if not run.best_checkpoint:
        return None
    try:
        return storage.local(run.best_checkpoint)
    except FileNotFoundError:
        return storage.absolute(run.best_checkpoint)


def starting_checkpoint(config: dict) -> Path | None:
    """For a worker: the best weights of the run that `pretrained: {"run": id}` names (checked against
    the person's teams by `starting_run` when the job was started); None when the config starts from
    elsewhere. ValidationError when that run is gone."""
    pretrained = config.get("pretrained")
    if not isinstance(pretrained, dict):
        return None
    parent = Run.objects.filter(pk=pretrained.get("run")).only("pk", "best_checkpoint").first()
    path = best_checkpoint_path(parent) if parent is not None else None
    if path is None:
        raise ValidationError(f"Run {pretrained.get('run')}, whose weights this starts from, is gone; clone the "
                              "experiment and start from something else.", code="config.pretrained")
    return path


def runs_training_now(worker_names: list[str]) -> dict[str, int]:
    """The run each of these workers is training now, by worker name: for the workers' status, which
    anyone may read (ids only, no team's data). A row whose heartbeat is older than DLSTUDIO_STALE_AFTER
    is not counted: its worker is gone, whatever name a new one took since."""
    horizon = timezone.now() - timezone.timedelta(seconds=settings.STALE_AFTER)
    rows = (Run.objects.filter(status=Run.Status.RUNNING, worker__in=worker_names, heartbeat_at__gte=horizon)
            .order_by("heartbeat_at").values_list("worker", "pk"))
    return dict(rows)  # the latest heartbeat last, so it wins if one worker somehow holds two


def _trace_roots() -> list[tuple[str, str]]:
    """Folder prefixes a traceback names, longest first, and what is shown instead."""
    roots = [(str(settings.BASE_DIR), "")]
    for key in ("purelib", "platlib"):
        roots.append((sysconfig.get_paths()[key], "site-packages"))
    roots.append((sysconfig.get_paths()["stdlib"], f"python{sys.version_info[0]}.{sys.version_info[1]}"))
    return sorted({(folder.rstrip("/") + "/", shown) for folder, shown in roots}, key=lambda r: -len(r[0]))


_FILE = re.compile(r'File "([^"]+)"')


def traceback_for(user, run: Run) -> str:
    """A failed run's traceback for its team's editors and owners, every file named relative to the project,
    site-packages or the standard library; for viewers nothing: the sentence in `error` is theirs, and a
    traceback would tell where and as whom the server runs."""
    if not run.traceback or not can_edit(user, run.team):
        return ""
    roots = _trace_roots()

    def relative(match: re.Match) -> str:
        path = match.group(1)
        for folder, shown in roots:
            if path.startswith(folder):
                return f'File "{shown}/{path[len(folder):]}"' if shown else f'File "{path[len(folder):]}"'
        return f'File "{Path(path).name}"'  # anywhere else: the file's name alone

    return _FILE.sub(relative, run.traceback)


def stored_files() -> set[str]:
    """Every checkpoint a run's row names, of every team (`manage.py storage_push`)."""
    return {*Run.objects.values_list("last_checkpoint", flat=True),
            *Run.objects.values_list("best_checkpoint", flat=True)} - {""}
