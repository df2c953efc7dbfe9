from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_http_methods, require_safe

from apps.runs import selectors as runs
from apps.teams.permissions import can_edit, require_editor
from dlstudio.pagination import page_for_request
from dlstudio.pictures import png_response

from . import charts, sample, services
from .forms import DatasetUploadForm, DatasetVersionForm, GalleryFilterForm
from .images import mean_image_uint8
from .models import Image
from .selectors import (
    class_counts, dataset_for, datasets_for, gallery_images, health_findings, pack_of, versions_of,
)
from .serializers import DatasetOptionsSerializer

GALLERY_PAGE = 48


@login_required
@require_safe
def dataset_list(request):
    # A page of the team's datasets by cursor (newest first; no count, no offset); versions are grouped
    # into families within the page, so a family whose versions span two pages shows on both.
    page = page_for_request(datasets_for(request.user).filter(team=request.team).prefetch_related("classes")
                            .order_by("-created", "-id"), request.GET)
    families: dict[int, list] = {}
    for dataset in page.rows:  # newest first, so each family is placed by its newest version
        families.setdefault(dataset.family_id, []).append(dataset)
    return render(request, "datasets/list.html", {
        "datasets": page.rows, "page": page,
        "families": [sorted(versions, key=lambda d: -d.version) for versions in families.values()],
        "can_edit": can_edit(request.user, request.team),
    })


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def dataset_upload(request):
    require_editor(request.user, request.team)
    form = DatasetUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        archive, name = values.pop("archive"), values.pop("name")
        if not values.get("labels"):
            values.pop("labels", None)
        options = DatasetOptionsSerializer(data=values)
        if options.is_valid():
            try:
                dataset = services.dataset_create(team=request.team, user=request.user, name=name,
                                                  upload=archive, options=options.validated_data)
            except ValidationError as exc:
                form.add_error(exc.code if exc.code in form.fields else "archive", exc.messages[0])
            else:
                return redirect("dataset_detail", dataset_id=dataset.pk)
        else:
            for field, errors in options.errors.items():
                form.add_error(field if field in form.fields else None, errors[0])
    return render(request, "datasets/upload.html", {"form": form})


@login_required
@require_POST
def dataset_sample(request):
    require_editor(request.user, request.team)
    dataset = sample.digits_dataset_create(team=request.team, user=request.user)
    messages.success(request, "Building the sample dataset of handwritten digits; it is ready in a moment.")
    return redirect("dataset_detail", dataset_id=dataset.pk)


@login_required
@require_safe
def dataset_detail(request, dataset_id):
    dataset = dataset_for(request.user, dataset_id)
    context = {"dataset": dataset, "can_edit": can_edit(request.user, dataset.team),
               "versions": versions_of(dataset)}
    if dataset.is_ready:
        counts = class_counts(dataset)
        sizes = [(s["width"], s["height"], s["count"]) for s in dataset.original_sizes.get("sizes", [])]
        filters = GalleryFilterForm(request.GET)
        chosen = filters.cleaned_data if filters.is_valid() else {}
        page = Paginator(gallery_images(dataset, label=chosen.get("label"), split=chosen.get("split"),
                                        issue=chosen.get("issue") or None),
                         GALLERY_PAGE).get_page(chosen.get("page") or 1)
        context.update({
            "classes": counts,
            "class_names": [c["name"] for c in counts],
            "class_chart": charts.class_split_bars(counts),
            "sizes_chart": charts.original_sizes_scatter(sizes),
            "page": page,
            "chosen": chosen,
            "splits": Image.Split.choices,
            "in_use": runs.dataset_in_use(dataset),
            "findings": health_findings(dataset),
            "issues": GalleryFilterForm.base_fields["issue"].choices[1:],
            "version_form": DatasetVersionForm(),
        })
    return render(request, "datasets/detail.html", context)


@login_required
@require_POST
def dataset_version_new(request, dataset_id):
    """A new version from the page: the dataset's gallery (or a run's misclassified images) sends the
    images to exclude and relabel, the form below it an archive to add."""
    dataset = dataset_for(request.user, dataset_id)
    require_editor(request.user, dataset.team)
    form = DatasetVersionForm(request.POST, request.FILES)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        messages.error(request, f"{field}: {errors[0]}")
        return redirect("dataset_detail", dataset_id=dataset.pk)
    values = form.cleaned_data
    try:
        version = services.dataset_version_create(parent=dataset, user=request.user, upload=values.get("archive"),
                                                  exclude=values.get("exclude"), relabel=values.get("relabel"),
                                                  labels=values.get("labels") or "folders")
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("dataset_detail", dataset_id=dataset.pk)
    messages.success(request, f"Making version {version.version} of {dataset.name}; it is ready in a moment.")
    return redirect("dataset_detail", dataset_id=version.pk)


@login_required
@require_safe
def dataset_thumbnail(request, dataset_id, index):
    dataset = dataset_for(request.user, dataset_id)
    try:
        thumbs = pack_of(dataset).thumbs
    except LookupError:
        raise Http404("This dataset is not ready.") from None
    if thumbs is None or not 0 <= index < len(thumbs):
        raise Http404("No such image.")
    return png_response(thumbs[index])


@login_required
@require_safe
def dataset_mean_image(request, dataset_id):
    dataset = dataset_for(request.user, dataset_id)
    try:
        mean = pack_of(dataset).mean_image
    except LookupError:
        raise Http404("This dataset is not ready.") from None
    return png_response(mean_image_uint8(mean))


@login_required
@require_POST
def dataset_delete(request, dataset_id):
    dataset = dataset_for(request.user, dataset_id)
    require_editor(request.user, dataset.team)
    try:
        services.dataset_delete(dataset=dataset)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("dataset_detail", dataset_id=dataset.pk)
    messages.success(request, f"Deleted the dataset {dataset.name}.")
    return redirect("dataset_list")
