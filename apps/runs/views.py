"""Run pages: the team's run history, one run (live), the comparison of a few; start, cancel, rerun."""
import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_date
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from apps.datasets.selectors import dataset_for, datasets_for, versions_of
from apps.experiments.selectors import experiment_for, experiments_for
from apps.teams.permissions import can_edit, require_editor

from dlstudio.pagination import BadCursor, keyset_page, page_size_of

from . import charts, exports, services
from .forms import RunFilterForm
from .models import Run
from .search import SearchError
from .selectors import (
    evaluation_of, from_scratch_beside, metrics_of, metrics_of_runs, run_for, runs_filtered, runs_searched,
)
from .serializers import run_detail

RUNS_PER_PAGE = 50
FILTER_CHOICES = 100  # datasets and experiments offered in the filters' menus
COUNT_FOR_S = 60  # how long the page's "about N runs" is reused before the team's runs are counted again
COMPARE_MAX = 8


ORDERINGS = [("-created", "newest first"), ("created", "oldest first"),
             ("-best_val_acc", "best validation accuracy"), ("-test_acc", "best test accuracy"),
             ("-epochs", "most epochs"), ("-duration", "longest"), ("duration", "shortest")]
SEARCH_EXAMPLES = ("config.lr < 0.01 and config.optimizer = adam and best_val_acc > 0.95",
                   "sweep = 12 and (status = failed or duration > 3600)", "dataset = flowers and dataset.version = 3",
                   "tag = baseline or by = ada", "created >= 2026-01-01 and config.augment.hflip = true")


def _history(request):
    """The team's runs the page's filters, search and sort name: (queryset or None, the sentence that says
    why a search or sort could not be read)."""
    data = request.GET.copy()
    ordering = data.pop("ordering", ["-created"])[-1] or "-created"
    filters = RunFilterForm(data)
    chosen = {k: v for k, v in filters.cleaned_data.items() if v and k != "ordering"} if filters.is_valid() else {}
    try:
        runs = runs_searched(request.user, team=request.team, query=request.GET.get("q", "").strip(),
                             ordering=ordering, **chosen)
    except SearchError as exc:
        return None, filters, f"The search cannot be read: {exc}."
    except ValidationError as exc:
        return None, filters, exc.messages[0]
    return runs, filters, ""


def _choices(queryset, filters, field) -> list:
    """The newest FILTER_CHOICES of the team's datasets or experiments for a filter's menu (ids and names
    alone), and the chosen one wherever it is: a menu of every one cost 0.8 s at 5,000 of each
    (docs/PERFORMANCE.md); older ones are found with the search (`dataset = …`, `experiment = …`)."""
    rows = list(queryset.select_related(None).order_by("-created", "-id").only("pk", "name")[:FILTER_CHOICES])
    chosen = filters.cleaned_data.get(field) if filters.is_valid() else None
    if chosen and chosen not in {r.pk for r in rows}:
        rows += list(queryset.select_related(None).filter(pk=chosen).only("pk", "name"))
    return rows


def counted_runs(team) -> tuple[int, dt.datetime]:
    """(the team's runs, when they were counted): counted at most once a minute per process, so a page view
    costs a cache read, not a count of the whole history; the page says it is a count as of that time.
    The process's own cache, not the shared one: a stale or lost entry costs one count, never a page."""
    key = f"run-count:{team.pk}"
    hit = caches["local"].get(key)
    if hit is None:
        hit = (Run.objects.filter(team=team).count(), timezone.now())
        caches["local"].set(key, hit, COUNT_FOR_S)
    return hit


@login_required
@require_safe
def run_list(request):
    runs, filters, problem = _history(request)
    page = None
    if runs is not None:
        try:
            before = parse_date(request.GET.get("before", "") or "")
        except ValueError:
            before = None
        if before and not request.GET.get("cursor"):
            runs = runs.filter(created__date__lt=before)
        try:
            page = keyset_page(runs, request.GET.get("cursor"), page_size_of(request.GET, RUNS_PER_PAGE))
        except BadCursor:
            page = keyset_page(runs, None, page_size_of(request.GET, RUNS_PER_PAGE))
    ordering = request.GET.get("ordering") or "-created"
    query = request.GET.copy()
    query.pop("cursor", None)
    export = query.copy()
    for key in ("before", "page_size"):
        export.pop(key, None)
    return render(request, "runs/list.html", {
        "page": page, "filters": filters, "query": query.urlencode(), "export_query": export.urlencode(),
        "q": request.GET.get("q", ""), "problem": problem, "examples": SEARCH_EXAMPLES,
        "ordering": ordering, "orderings": ORDERINGS, "custom_ordering": ordering not in dict(ORDERINGS),
        "before": request.GET.get("before", ""),
        "datasets": _choices(datasets_for(request.user).filter(team=request.team), filters, "dataset"),
        "experiments": _choices(experiments_for(request.user).filter(team=request.team), filters, "experiment"),
        "statuses": Run.Status.choices, "counted": counted_runs(request.team) if request.team else None,
    })


@login_required
@require_safe
def run_export(request):
    """The page's search as CSV (the team's runs only), streamed like GET /api/runs/export.csv."""
    runs, _, problem = _history(request)
    if runs is None:
        messages.error(request, problem)
        return redirect("run_list")
    try:
        keys = exports.config_columns(runs)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("run_list")
    return exports.download(exports.runs_csv(runs, keys), "runs.csv")


@login_required
@require_safe
def run_export_json(request):
    """The page's search as a JSON array (the team's runs only), streamed like GET /api/runs/export.json."""
    runs, _, problem = _history(request)
    if runs is None:
        messages.error(request, problem)
        return redirect("run_list")
    return exports.download(exports.runs_json(runs), "runs.json")


@login_required
@require_safe
def run_page(request, run_id):
    run = run_for(request.user, run_id)
    metrics = metrics_of(run)  # read once: the diagnosis, the figures and the page all use these rows
    detail = run_detail(run, request.user, metrics)
    diagnosis = detail["diagnosis"]
    evaluation = evaluation_of(run)
    figures = {
        "loss": charts.loss_figure(metrics, best_epoch=run.best_epoch, diagnosis=diagnosis),
        "accuracy": charts.accuracy_figure(metrics, best_epoch=run.best_epoch, diagnosis=diagnosis),
        "gap": charts.gap_figure(metrics, best_epoch=run.best_epoch, diagnosis=diagnosis),
        "lr": charts.lr_figure(metrics),
    }
    if evaluation:
        figures["confusion"] = charts.confusion_figure(evaluation.classes, evaluation.confusion)
        figures["per_class"] = charts.per_class_figure(evaluation.per_class)
    return render(request, "runs/detail.html", {
        "run": run, "detail": detail, "scratch": from_scratch_beside(request.user, run), "diagnosis": diagnosis,
        "evaluation": evaluation, "figures": figures,
        "live_traces": charts.LIVE_TRACES, "last_epoch": metrics[-1]["epoch"] if metrics else 0,
        "can_edit": can_edit(request.user, run.team),
        "can_fix_labels": bool(run.dataset and run.dataset.is_ready and can_edit(request.user, run.team)),
        "version_evaluations": run.evaluations.select_related("dataset"),
        "other_versions": ([v for v in versions_of(run.dataset) if v.pk != run.dataset_id and v.is_ready]
                           if run.dataset and evaluation else []),
        "misclassified": (evaluation.misclassified[:60] if evaluation else []),
    })



@login_required
@require_POST
def run_evaluate(request, run_id):
    run = run_for(request.user, run_id)
    require_editor(request.user, run.team)
    try:
        dataset = dataset_for(request.user, int(request.POST.get("dataset", "")))
        services.run_evaluate_on(run=run, dataset=dataset)
    except ValueError:
        messages.error(request, "Pick a version to evaluate on.")
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.info(request, f"Evaluating on {dataset.name} v{dataset.version}; the result appears here in a moment.")
    return redirect("run_detail", run_id=run.pk)


@login_required
@require_POST
def run_cancel(request, run_id):
    run = run_for(request.user, run_id)
    require_editor(request.user, run.team)
    run = services.run_cancel(run=run)
    messages.info(request, "Cancelled." if run.status == Run.Status.CANCELLED else
                  "Asked the worker to stop; the run checkpoints and ends in a few seconds.")
    return redirect("run_detail", run_id=run.pk)


@login_required
@require_POST
def run_rerun(request, run_id):
    run = run_for(request.user, run_id)
    require_editor(request.user, run.team)
    return start(request, run.experiment, overrides=run.config)


@login_required
@require_POST
def run_annotate(request, run_id):
    run = run_for(request.user, run_id)
    require_editor(request.user, run.team)
    tags = [t for t in request.POST.get("tags", "").split(",")]
    try:
        services.run_annotate(run=run, notes=request.POST.get("notes", ""), tags=tags)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, "Saved the notes and tags.")
    return redirect("run_detail", run_id=run.pk)


@login_required
@require_safe
def run_compare(request):
    ids = []
    for part in request.GET.getlist("ids") or request.GET.get("ids", "").split(","):
        ids += [int(x) for x in str(part).split(",") if x.strip().isdigit()]
    if ids or not request.GET.get("q"):
        runs = list(runs_filtered(request.user).filter(pk__in=ids[:COMPARE_MAX]).order_by("pk"))
    else:  # a search instead of ticks: its first N (at most 8) in the order asked, best accuracy by default
        try:
            top = min(max(int(request.GET.get("n") or COMPARE_MAX), 2), COMPARE_MAX)
            runs = list(runs_searched(request.user, team=request.team, query=request.GET["q"],
                                      ordering=request.GET.get("ordering") or "-best_val_acc")[:top])
        except SearchError as exc:
            messages.error(request, f"The search cannot be read: {exc}.")
            return redirect("run_list")
        except (ValidationError, ValueError):
            messages.error(request, "Compare takes n from 2 to 8 and a sort that the runs list offers.")
            return redirect("run_list")
    if len(runs) < 2:
        messages.error(request, "Tick between 2 and 8 runs to compare them, or search for at least 2.")
        return redirect("run_list")
    metrics = metrics_of_runs(runs)  # one query for all of them
    series = [{"label": f"run {r.pk} · {r.experiment.name}", "metrics": metrics[r.pk]} for r in runs]
    keys = sorted({k for r in runs for k in r.config})
    differing = [(key, [r.config.get(key) for r in runs]) for key in keys
                 if len({repr(r.config.get(key)) for r in runs}) > 1]
    return render(request, "runs/compare.html", {"runs": runs, "figures": charts.compare_figures(series),
                                                 "differing": differing})


def start(request, experiment, overrides=None):
    """Queue a run of `experiment` and show it; a refusal goes back to the experiment with its reason."""
    try:
        run = services.run_start(experiment=experiment, user=request.user, overrides=overrides)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("experiment_detail", experiment_id=experiment.pk)
    messages.success(request, f"Queued run {run.pk}; a training worker picks it up next.")
    return redirect("run_detail", run_id=run.pk)


@login_required
@require_POST
def experiment_start_run(request, experiment_id):
    experiment = experiment_for(request.user, experiment_id)
    require_editor(request.user, experiment.team)
    return start(request, experiment)
