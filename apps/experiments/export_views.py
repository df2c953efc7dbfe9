"""A finished run as files: the best checkpoint, an ONNX graph, a model card; and the predict page."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from .models import Evaluation
from .predicting import MAX_IMAGES, best_checkpoint, predictor_for
from .selectors import run_for


@login_required
@require_safe
def run_predict_page(request, run_id):
    run = run_for(request.user, run_id)
    try:
        classes = predictor_for(run).classes
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("run_detail", run_id=run.pk)
    return render(request, "runs/predict.html", {"run": run, "classes": classes, "max_images": MAX_IMAGES})


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
    from workers.engine import CheckpointError
    from workers.engine.export import ExportUnavailable, export_onnx

    run = run_for(request.user, run_id)
    try:
        checkpoint = best_checkpoint(run)
        onnx_path = checkpoint.with_name("best.onnx")
        # Made once per checkpoint version, then served from the run's folder.
        if not onnx_path.is_file() or onnx_path.stat().st_mtime < checkpoint.stat().st_mtime:
            export_onnx(checkpoint, onnx_path)
    except (ValidationError, ExportUnavailable, CheckpointError) as exc:
        messages.error(request, exc.messages[0] if isinstance(exc, ValidationError) else str(exc))
        return redirect("run_detail", run_id=run.pk)
    return _download(onnx_path, f"run-{run.pk}.onnx", "application/octet-stream")


def model_card(run, predictor) -> dict:
    p = predictor.preprocessing
    evaluation = Evaluation.objects.filter(run=run).first()
    return {
        "format": "dlstudio-model-card", "version": 1,
        "run": run.pk, "experiment": run.experiment.name, "arch": run.arch,
        "classes": predictor.classes,
        "preprocessing": {
            "image_size": p.image_size, "resize_mode": p.resize_mode, "channels": p.channels,
            "color": "grayscale" if p.channels == 1 else "rgb", "normalize": p.normalize, "equalize": p.equalize,
            "mean": p.mean, "std": p.std,
            "input": "N x C x H x W float32: pixels / 255, then the normalisation above (for mean_image, "
                     "the checkpoint holds the mean image to subtract)",
        },
        "metrics": {"best_epoch": run.best_epoch, "best_val_acc": run.best_val_acc, "test_acc": run.test_acc,
                    "evaluation_split": evaluation.split if evaluation else None,
                    "evaluation_accuracy": evaluation.accuracy if evaluation else None,
                    "top_k_accuracy": evaluation.top_k_accuracy if evaluation else None},
        "dataset": ({"id": run.dataset.pk, "name": run.dataset.name, "num_images": run.dataset.num_images,
                     "options": run.dataset.options} if run.dataset else None),
        "config": run.config,
        "started_from_run": run.parent_id,
        "trained": {"device": run.device, "worker": run.worker, "torch": run.torch_version,
                    "code": run.code_version, "finished": run.finished_at.isoformat() if run.finished_at else None},
    }


@login_required
@require_safe
def run_export_model_card(request, run_id):
    run = run_for(request.user, run_id)
    try:
        predictor = predictor_for(run)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("run_detail", run_id=run.pk)
    response = JsonResponse(model_card(run, predictor), json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-model-card.json"'
    return response
