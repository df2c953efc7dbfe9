"""The LR finder on the experiment page and in the API: start a range test, read the latest one."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import charts
from .api import as_api_error
from .lr_finding import lr_finding_start
from .models import LRFinding
from .selectors import experiment_for


def lr_finding_body(finding: LRFinding) -> dict:
    """The API's answer; a finished test carries its chart too (charts.py), for the page to draw."""
    body = {"id": finding.pk, "experiment": finding.experiment_id, "status": finding.status, "lrs": finding.lrs,
            "losses": finding.losses, "suggested_lr": finding.suggested_lr, "error": finding.error,
            "created": finding.created, "finished_at": finding.finished_at}
    if finding.status == LRFinding.Status.SUCCEEDED:
        body["figure"] = charts.lr_finder_figure(finding.lrs, finding.losses, finding.suggested_lr)
    return body


@login_required
@require_POST
def lr_finder_start(request, experiment_id):
    experiment = experiment_for(request.user, experiment_id)
    try:
        lr_finding_start(experiment=experiment, user=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, "Queued an LR range test; a training worker runs it next, in seconds to a minute.")
    return redirect(reverse("experiment_detail", args=[experiment.pk]) + "#lr-finder")


class LRFinderApi(APIView):
    def get(self, request, experiment_id):
        finding = experiment_for(request.user, experiment_id).lr_findings.first()
        if finding is None:
            return Response({"error": "This experiment has no LR range test yet; POST here to start one."},
                            status=status.HTTP_404_NOT_FOUND)
        return Response(lr_finding_body(finding))

    def post(self, request, experiment_id):
        experiment = experiment_for(request.user, experiment_id)
        try:
            finding = lr_finding_start(experiment=experiment, user=request.user)
        except ValidationError as exc:
            raise as_api_error(exc) from None
        return Response(lr_finding_body(finding), status=status.HTTP_201_CREATED)
