"""Run pages: the team's run history, one run (live), the comparison of a few; start, cancel, rerun."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.datasets.selectors import dataset_for, datasets_for, versions_of
from apps.experiments.selectors import experiment_for, experiments_for
from apps.teams.permissions import can_edit, require_editor

from . import charts, services
from .forms import RunFilterForm
from .models import Run
from .selectors import evaluation_of, from_scratch_beside, metrics_of, metrics_of_runs, run_for, runs_filtered
from .serializers import run_detail

RUNS_PER_PAGE = 50
COMPARE_MAX = 8


@login_required
@require_safe
def run_list(request):
    filters = RunFilterForm(request.GET)
    chosen = {k: v for k, v in filters.cleaned_data.items() if v} if filters.is_valid() else {}
    runs = runs_filtered(request.user, team=request.team, **chosen)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "runs/list.html", {
        "page": page, "filters": filters, "query": query.urlencode(),
        "datasets": datasets_for(request.user).filter(team=request.team),
        "experiments": experiments_for(request.user).filter(team=request.team),
        "statuses": Run.Status.choices,
    })


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
    runs = list(runs_filtered(request.user).filter(pk__in=ids[:COMPARE_MAX]).order_by("pk"))
    if len(runs) < 2:
        messages.error(request, "Tick between 2 and 8 runs to compare them.")
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
