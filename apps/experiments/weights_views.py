"""The team weights library pages: the list (with what torchvision's cache here holds), upload, delete."""
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_http_methods, require_safe

from apps.teams.models import Membership
from apps.teams.permissions import has_role, require_role
from apps.teams.selectors import role_in
from workers.engine.config import IMAGENET_ARCHS

from .weights import (imagenet_cache, max_weights_bytes, weights_file_create, weights_file_delete,
                      weights_file_for, weights_files_for)


class WeightsUploadForm(forms.Form):
    file = forms.FileField(widget=forms.FileInput(attrs={"accept": ".pth,.pt,.safetensors"}),
                           help_text="A state dict saved with torch.save (.pth, .pt) or safetensors (.safetensors); "
                                     "it is checked without running any code in it.")
    arch = forms.ChoiceField(choices=[(a, a) for a in IMAGENET_ARCHS], initial="resnet18",
                             label="Architecture", help_text="The torchvision network the weights were trained for; "
                                                              "they must load into it exactly.")
    name = forms.CharField(max_length=200, required=False,
                           help_text="How the experiment form lists it, e.g. “resnet18 ImageNet V1”; "
                                     "the file's name when empty.")


@login_required
@require_safe
def weights_list(request):
    files = weights_files_for(request.user).filter(team=request.team).annotate(run_count=Count("runs"))
    return render(request, "weights/list.html", {
        "files": files,
        "cache": imagenet_cache(),
        "can_edit": has_role(role_in(request.user, request.team), Membership.Role.EDITOR),
    })


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def weights_upload(request):
    require_role(request.user, request.team, Membership.Role.EDITOR)
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
    require_role(request.user, weights_file.team, Membership.Role.EDITOR)
    try:
        weights_file_delete(weights_file=weights_file)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"Deleted the weights file {weights_file.name}.")
    return redirect("weights_list")
