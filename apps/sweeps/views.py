"""Sweep pages: start one from an experiment, watch it (live charts), cancel it, adopt its best config."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST, require_safe

from apps.experiments.selectors import experiment_for
from apps.runs.selectors import curves_of, trials_of
from apps.teams.permissions import can_edit, require_editor

from . import charts, services, study
from .models import Sweep
from .selectors import best_of, records_of, start_form, sweep_for


@login_required
@require_POST
def sweep_start(request, experiment_id):
    experiment = experiment_for(request.user, experiment_id)
    require_editor(request.user, experiment.team)
    form = start_form(experiment, request.POST)
    if form.is_valid():
        try:
            sweep = services.sweep_create(user=request.user, experiment=experiment, **form.settings())
        except ValidationError as exc:
            form.add_error(form.field_of(exc.code), exc.messages[0])
        else:
            messages.success(request, f"Started the sweep {sweep.name}: its first trials are queued.")
            return redirect("sweep_detail", sweep_id=sweep.pk)
    # The form again, as typed, with the sentence beside the field it is about.
    return render(request, "sweeps/start.html", {"experiment": experiment, "form": form})


def trial_rows(sweep: Sweep) -> tuple[list, list[dict]]:
    """The sweep's runs, and each as the charts and the table read it (one query for the curves)."""
    runs = trials_of(sweep.pk)
    records = records_of(sweep, runs)
    rows = [{"number": record.number, "run": run.pk, "params": record.params, "state": record.state,
             "status": run.status, "pruned": run.pruned, "curve": record.curve, "epoch": run.epoch,
             "epochs": run.epochs, "best_val_acc": run.best_val_acc,
             "params_text": [(key, charts.text_of(value)) for key, value in record.params.items()],
             "value": charts.trial_value({"curve": record.curve}, sweep.metric)}
            for run, record in zip(runs, records)]
    return runs, rows


def _state(sweep: Sweep, colour: str | None) -> dict:
    """Everything the page and its live updates show, read once."""
    runs, rows = trial_rows(sweep)
    records = [study.TrialRecord(number=r["number"], params=r["params"], state=r["state"], curve=r["curve"])
               for r in rows]
    choices = charts.colour_choices(sweep.parameters)
    colour = colour if colour in choices else choices[0]
    seconds = [s for curve in curves_of([r.pk for r in runs], "seconds").values() for s in curve.values()]
    default_epochs = sweep.experiment.config.get("epochs", 10)
    return {
        "runs": runs, "rows": rows, "colour": colour, "colours": choices,
        "best": best_of(sweep, runs) if runs else None,
        "progress": charts.progress(rows, total=sweep.trials, default_epochs=default_epochs, seconds=seconds),
        "figures": charts.figures(sweep.parameters, rows, metric=sweep.metric, colour=colour,
                                  importance=study.importance(sweep.parameters, records, metric=sweep.metric)),
    }


@login_required
@require_safe
def sweep_page(request, sweep_id):
    sweep = sweep_for(request.user, sweep_id)
    state = _state(sweep, request.GET.get("colour"))
    return render(request, "sweeps/detail.html", {"sweep": sweep, **state, **_shown(request, sweep, state)})


def _shown(request, sweep: Sweep, state: dict) -> dict:
    """What the page's templates need besides the state (the best trial's values as text, the role)."""
    best = state["best"]
    value = next((r["value"] for r in state["rows"] if best is not None and r["run"] == best.pk), None)
    return {"can_edit": can_edit(request.user, sweep.team), "running": sweep.status == Sweep.Status.RUNNING,
            "best_value": value,
            "best_params": [(k, charts.text_of(v)) for k, v in (best.trial_params or {}).items()] if best else []}


@login_required
@require_safe
def sweep_charts(request, sweep_id):
    """What the live page redraws every few seconds while the sweep runs: the figures, the progress, the
    trials table and the best trial (rendered here, so the page's script only puts them in place)."""
    sweep = sweep_for(request.user, sweep_id)
    state = _state(sweep, request.GET.get("colour"))
    context = {"sweep": sweep, **state, **_shown(request, sweep, state)}
    return JsonResponse({"status": sweep.status, "colour": state["colour"], "figures": state["figures"],
                         "progress": state["progress"],
                         "table": render_to_string("sweeps/trials.html", context, request=request),
                         "best": render_to_string("sweeps/best.html", context, request=request)})


@login_required
@require_POST
def sweep_cancel(request, sweep_id):
    sweep = sweep_for(request.user, sweep_id)
    require_editor(request.user, sweep.team)
    sweep = services.sweep_cancel(sweep=sweep, user=request.user)
    messages.info(request, "Cancelled the sweep: no trial starts any more, and the running ones stop within "
                           "seconds." if sweep.status == Sweep.Status.CANCELLED else f"The sweep has {sweep.status}.")
    return redirect("sweep_detail", sweep_id=sweep.pk)


@login_required
@require_POST
def sweep_adopt(request, sweep_id):
    sweep = sweep_for(request.user, sweep_id)
    require_editor(request.user, sweep.team)
    try:
        best = services.sweep_adopt_best(sweep=sweep, user=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"The experiment {sweep.experiment.name} now has the config of run {best.pk}, the "
                                  "sweep's best; its next runs start from it.")
    return redirect("sweep_detail", sweep_id=sweep.pk)
