"""Experiment pages: list, the config form (presets, clones), detail, and the LR finder's start."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_http_methods, require_safe

from apps.datasets.selectors import dataset_for, ready_datasets_of
from apps.runs.selectors import run_for, runs_of_experiment, succeeded_runs_of
from apps.runs.services import run_start
from apps.sweeps.selectors import start_form, sweeps_of_experiment
from apps.teams.permissions import can_edit, require_editor
from apps.weights.selectors import imagenet_cache, weights_files_of
from dlstudio.pagination import page_for_request

from . import charts, services
from .forms import DEFAULTS, PRESETS, SECTIONS, ExperimentForm, form_field_of, initial_from
from .models import LRFinding
from .selectors import experiment_for, experiments_for, experiments_with_results, latest_lr_finding

# The runs the form offers to start from: the newest; an older one is named by id through the API.
STARTING_RUNS_OFFERED = 200


@login_required
@require_safe
def experiment_list(request):
    # The page's experiments by cursor first, then their runs' count and best accuracy for those alone:
    # aggregated over the team's whole list, the page would cost as much as the history.
    page = page_for_request(experiments_for(request.user).filter(team=request.team).order_by("-created", "-id"),
                            request.GET)
    if page.rows:
        page.rows = list(experiments_with_results(request.user, request.team)
                         .filter(pk__in=[e.pk for e in page.rows]).order_by("-created", "-id"))
    return render(request, "experiments/list.html", {
        "experiments": page.rows, "page": page,
        "can_edit": can_edit(request.user, request.team),
    })


def _form(request, *, data=None, initial=None):
    return ExperimentForm(data, initial=initial, datasets=ready_datasets_of(request.user, request.team),
                          runs=succeeded_runs_of(request.user, request.team)[:STARTING_RUNS_OFFERED],
                          weights_files=weights_files_of(request.user, request.team))


def _form_page(request, form, origin):
    """The form with torchvision's cache as this machine sees it, for the warning beside "Weights"."""
    cache = imagenet_cache()
    arch, weights_file = form["arch"].value(), form["weights_file"].value()
    missing = cache["archs"].get(arch) if form["pretrained"].value() == "imagenet" and not weights_file else None
    return render(request, "experiments/form.html", {
        "form": form, "origin": origin, "presets": PRESETS, "cache": cache,
        "cache_missing": {"arch": arch, **missing} if missing and not missing["present"] else None,
    })


def _starting_point(request) -> tuple[dict, str]:
    """Initial form values: a preset, a clone of an experiment or of a run's config, or the defaults;
    `lr` in the query (the LR finder's suggestion) replaces the learning rate of any of them."""
    initial, origin = _source(request)
    try:
        lr = float(request.GET.get("lr", ""))
    except ValueError:
        return initial, origin
    return {**initial, "lr": lr}, f"{origin}, with the learning rate {lr:.3g}"


def _object_id(value: str) -> int:
    """An id from the query string; anything but digits is as unknown as a foreign id (404, not 500)."""
    if not value.isdigit():
        raise Http404("No such object.")
    return int(value)


def _source(request) -> tuple[dict, str]:
    if request.GET.get("from_experiment"):
        source = experiment_for(request.user, _object_id(request.GET["from_experiment"]))
        return {**initial_from(source.config), "name": f"{source.name} (copy)", "dataset": source.dataset_id,
                "weights_file": source.weights_file_id}, f"a copy of {source.name}"
    if request.GET.get("from_run"):
        run = run_for(request.user, _object_id(request.GET["from_run"]))
        return {**initial_from(run.config), "name": f"{run.experiment.name} (from run {run.pk})",
                "dataset": run.dataset_id, "weights_file": run.weights_file_id}, f"the config of run {run.pk}"
    if request.GET.get("preset") in PRESETS:
        label, config = PRESETS[request.GET["preset"]]
        return {**initial_from(config), "name": label}, f"the preset {label}"
    return initial_from({}), "the defaults"


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def experiment_create(request):
    require_editor(request.user, request.team)
    if request.method != "POST":
        initial, origin = _starting_point(request)
        return _form_page(request, _form(request, initial=initial), origin)
    form = _form(request, data=request.POST)
    if form.is_valid():
        dataset = dataset_for(request.user, form.cleaned_data["dataset"])
        try:
            experiment = services.experiment_create(team=request.team, user=request.user, dataset=dataset,
                                                    name=form.cleaned_data["name"], config=form.config(),
                                                    weights_file=form.weights_file())
        except ValidationError as exc:
            field = form_field_of(exc.code or "") if exc.code else None
            form.add_error(field if field in form.fields else None, exc.messages[0])
        else:
            _warn_if_not_cached(request, experiment)
            if "start" in request.POST:
                return _start(request, experiment)
            messages.success(request, f"Created the experiment {experiment.name}.")
            return redirect("experiment_detail", experiment_id=experiment.pk)
    return _form_page(request, form, "your changes")


def _warn_if_not_cached(request, experiment) -> None:
    """Not a refusal: the GPU workers have caches of their own and may hold the file."""
    if experiment.config.get("pretrained") != "imagenet" or experiment.weights_file_id:
        return
    cache = imagenet_cache()
    entry = cache["archs"][experiment.config["arch"]]
    if not entry["present"]:
        messages.warning(request, f"{entry['file']} (torchvision's ImageNet weights for {experiment.config['arch']}) "
                                  f"is not in {cache['folder']} on this machine; a run fails unless the worker that "
                                  "trains it has the file in its own cache, so put it there or upload it to the "
                                  "team's weights library.")


@login_required
@require_safe
def experiment_detail(request, experiment_id):
    experiment = experiment_for(request.user, experiment_id)
    finding = latest_lr_finding(experiment)
    differences = [(key, experiment.config.get(key), DEFAULTS.get(key)) for key in DEFAULTS
                   if experiment.config.get(key) != DEFAULTS.get(key)]
    editor = can_edit(request.user, experiment.team)
    return render(request, "experiments/detail.html", {
        "experiment": experiment,
        "lr_finding": finding,
        "lr_figure": (charts.lr_finder_figure(finding.lrs, finding.losses, finding.suggested_lr)
                      if finding and finding.status == LRFinding.Status.SUCCEEDED else None),
        "runs": runs_of_experiment(experiment),
        "differences": differences,
        "sections": SECTIONS,
        "can_edit": editor,
        "sweeps": sweeps_of_experiment(experiment),
        "sweep_form": start_form(experiment) if editor else None,
    })


def _start(request, experiment):
    try:
        run = run_start(experiment=experiment, user=request.user)
    except ValidationError as exc:
        messages.error(request, f"Created the experiment {experiment.name}, but no run was started: {exc.messages[0]}")
        return redirect("experiment_detail", experiment_id=experiment.pk)
    messages.success(request, f"Created the experiment {experiment.name} and queued run {run.pk}; a training worker "
                              "picks it up next.")
    return redirect("run_detail", run_id=run.pk)


@login_required
@require_POST
def lr_finder_start(request, experiment_id):
    experiment = experiment_for(request.user, experiment_id)
    try:
        services.lr_finding_start(experiment=experiment, user=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, "Queued an LR range test; a training worker runs it next, in seconds to a minute.")
    return redirect(reverse("experiment_detail", args=[experiment.pk]) + "#lr-finder")
