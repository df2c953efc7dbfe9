from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_safe
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .status import system_status


class HealthApi(APIView):
    """No authentication and no secrets: for load balancers, monitors and the home page."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        status = system_status()
        return Response(status, status=200 if status["status"] == "ok" else 503)


@login_required
@require_safe
def home(request):
    from apps.experiments.selectors import queue_of, runs_for

    return render(request, "home.html", {
        "system": system_status(),
        "queue": queue_of(request.user, request.team)[:20],
        "recent_runs": runs_for(request.user).filter(team=request.team).order_by("-created", "-id")[:10],
    })
