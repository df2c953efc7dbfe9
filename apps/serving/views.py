"""A finished run as files: the best checkpoint, an ONNX graph, a model card; and the predict page."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from apps.runs.selectors import evaluation_of, run_for
from dlstudio.pictures import png_response
from workers import engine

from .explaining import filters_picture
from .exporting import onnx_file
from .model_card import model_card
from .predictors import MAX_IMAGES, best_checkpoint, predictor_for


@login_required
@require_safe
def run_predict_page(request, run_id):
    run = run_for(request.user, run_id)
    try:
        classes = predictor_for(run).classes
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("run_detail", run_id=run.pk)
    return render(request, "serving/predict.html", {"run": run, "classes": classes, "max_images": MAX_IMAGES})


def _download(path, filename, content_type):
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=filename, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_safe
def run_export_checkpoint(request, run_id):
    run = run_for(request.user, run_id)
    try:
        path = best_checkpoint(run)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("run_detail", run_id=run.pk)
    return _download(path, f"run-{run.pk}-best.pt", "application/octet-stream")


@login_required
@require_safe
def run_export_onnx(request, run_id):
    run = run_for(request.user, run_id)
    try:
        onnx_path = onnx_file(run)
    except (ValidationError, engine.ExportUnavailable, engine.CheckpointError) as exc:
        messages.error(request, exc.messages[0] if isinstance(exc, ValidationError) else str(exc))
        return redirect("run_detail", run_id=run.pk)
    return _download(onnx_path, f"run-{run.pk}.onnx", "application/octet-stream")


@login_required
@require_safe
def run_filters_png(request, run_id):
    run = run_for(request.user, run_id)
    try:
        return png_response(filters_picture(run))
    except ValidationError:
        raise Http404("This run has no trained weights yet.") from None


@login_required
@require_safe
def run_export_model_card(request, run_id):
    run = run_for(request.user, run_id)
    try:
        predictor = predictor_for(run)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("run_detail", run_id=run.pk)
    response = JsonResponse(model_card(run, predictor, evaluation_of(run)), json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-model-card.json"'
    return response
