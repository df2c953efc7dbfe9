"""The team weights library pages: the list (with what torchvision's cache here holds), upload, delete."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_http_methods, require_safe

from apps.teams.permissions import can_edit, require_editor

from .forms import WeightsUploadForm
from .selectors import imagenet_cache, max_weights_bytes, weights_file_for, weights_files_with_use
from .services import weights_file_create, weights_file_delete


@login_required
@require_safe
def weights_list(request):
    files = weights_files_with_use(request.user, request.team)
    return render(request, "weights/list.html", {
        "files": files,
        "cache": imagenet_cache(),
        "can_edit": can_edit(request.user, request.team),
    })


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def weights_upload(request):
    require_editor(request.user, request.team)
    form = WeightsUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            weights_file = weights_file_create(team=request.team, user=request.user, upload=form.cleaned_data["file"],
                                               name=form.cleaned_data["name"], arch=form.cleaned_data["arch"])
        except ValidationError as exc:
            form.add_error(exc.code if exc.code in form.fields else None, exc.messages[0])
        else:
            messages.success(request, f"Added {weights_file.name} ({weights_file.arch}, {weights_file.tensors} "
                                      "tensors); pick it under “Weights” when an experiment starts from ImageNet.")
            return redirect("weights_list")
    return render(request, "weights/upload.html", {"form": form, "limit_mb": max_weights_bytes() // 2**20})


@login_required
@require_POST
def weights_delete(request, weights_id):
    weights_file = weights_file_for(request.user, weights_id)
    require_editor(request.user, weights_file.team)
    try:
        weights_file_delete(weights_file=weights_file)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"Deleted the weights file {weights_file.name}.")
    return redirect("weights_list")
