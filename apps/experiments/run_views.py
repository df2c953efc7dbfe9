"""Run pages: the team's run history, one run (live), and the comparison of a few."""
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.datasets.selectors import datasets_for
from apps.teams.models import Membership
from apps.teams.permissions import require_role

from . import charts, services
from .api import run_detail
from .models import Evaluation, Run
from .selectors import experiments_for, metrics_of, metrics_of_runs, run_for, runs_filtered
from .views import _can_edit, _start

RUNS_PER_PAGE = 50
COMPARE_MAX = 8


class RunFilterForm(forms.Form):
    dataset = forms.IntegerField(required=False)
    experiment = forms.IntegerField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "any")] + list(Run.Status.choices))
    arch = forms.CharField(required=False, max_length=40)
    creator = forms.CharField(required=False, max_length=150)
    tag = forms.CharField(required=False, max_length=40)
    ordering = forms.ChoiceField(required=False, choices=[("-created", "newest first"),
                                                          ("-best_val_acc", "best validation accuracy")])


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
    detail = run_detail(run, metrics)
    diagnosis = detail["diagnosis"]
    evaluation = Evaluation.objects.filter(run=run).first()
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
        "run": run, "detail": detail, "scratch": _from_scratch_beside(request.user, run), "diagnosis": diagnosis, "evaluation": evaluation, "figures": figures,
        "live_traces": charts.LIVE_TRACES, "last_epoch": metrics[-1]["epoch"] if metrics else 0,
        "can_edit": _can_edit(request.user, run.team),
        "misclassified": (evaluation.misclassified[:60] if evaluation else []),
    })


def _from_scratch_beside(user, run):
    """For a run that started from other weights: the latest finished run on its dataset that did not,
    to compare what the starting weights bought."""
    if not run.config.get("pretrained") or run.dataset_id is None:
        return None
    return (runs_filtered(user, dataset=run.dataset_id, status=Run.Status.SUCCEEDED)
            .filter(config__pretrained=None).exclude(pk=run.pk).first())


@login_required
@require_POST
def run_cancel(request, run_id):
    run = run_for(request.user, run_id)
    require_role(request.user, run.team, Membership.Role.EDITOR)
    run = services.run_cancel(run=run)
    messages.info(request, "Cancelled." if run.status == Run.Status.CANCELLED else
                  "Asked the worker to stop; the run checkpoints and ends in a few seconds.")
    return redirect("run_detail", run_id=run.pk)


@login_required
@require_POST
def run_rerun(request, run_id):
    run = run_for(request.user, run_id)
    require_role(request.user, run.team, Membership.Role.EDITOR)
    return _start(request, run.experiment, overrides=run.config)


@login_required
@require_POST
def run_annotate(request, run_id):
    run = run_for(request.user, run_id)
    require_role(request.user, run.team, Membership.Role.EDITOR)
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
