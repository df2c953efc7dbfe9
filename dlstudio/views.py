from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.runs.selectors import queue_of, recent_runs_of

from .status import system_status


HEALTH = inline_serializer("Health", {
    "status": serializers.ChoiceField(choices=["ok", "degraded"]),
    "database": serializers.ChoiceField(choices=["ok", "unavailable"]),
    "broker": serializers.ChoiceField(choices=["ok", "unavailable"]),
    "workers": inline_serializer("Worker", {
        "name": serializers.CharField(),
        "queues": serializers.ListField(child=serializers.CharField()),
        "device": serializers.CharField(help_text="The CUDA device it trains on, or `cpu`."),
        "busy": serializers.IntegerField(allow_null=True, help_text="The id of the run it is training now."),
        "cpu_percent": serializers.FloatField(allow_null=True, help_text="Its processes' CPU use, in percent "
                                              "of one core (past 100 on several)."),
        "memory_mb": serializers.IntegerField(allow_null=True, help_text="Its processes' resident memory, MiB."),
        "gpus": inline_serializer("WorkerGpu", {
            "index": serializers.IntegerField(help_text="As nvidia-smi numbers the GPUs."),
            "name": serializers.CharField(allow_null=True),
            "utilization": serializers.IntegerField(allow_null=True, help_text="Percent of the time busy."),
            "memory_used_mb": serializers.IntegerField(allow_null=True),
            "memory_total_mb": serializers.IntegerField(allow_null=True),
            "temperature_c": serializers.IntegerField(allow_null=True),
        }, many=True, help_text="The GPUs it may use (CUDA_VISIBLE_DEVICES); empty without one."),
        "seen": serializers.FloatField(help_text="When it sent these figures (Unix time); at most 10 s ago."),
    }, many=True),
    "processes": inline_serializer("Process", {
        "name": serializers.CharField(), "pid": serializers.IntegerField(allow_null=True),
        "state": serializers.ChoiceField(choices=["running", "restarting"]),
        "restarts": serializers.IntegerField(), "last_exit": serializers.IntegerField(allow_null=True),
        "crash_looping": serializers.BooleanField(),
    }, many=True, required=False, help_text="Under `make run`: the processes it keeps running on this machine."),
})


class HealthApi(APIView):
    """No authentication and no secrets: for load balancers, monitors and the home page."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: HEALTH, 503: OpenApiResponse(HEALTH, description="The database or the broker "
                                                                                        "does not answer.")})
    def get(self, request):
        status = system_status()
        return Response(status, status=200 if status["status"] == "ok" else 503)


class JsonErrors:
    """A view whose refusals (401, 429) are the API's JSON errors, whatever it renders when it answers."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response


class SchemaApi(JsonErrors, SpectacularAPIView):
    """GET /api/schema/: the OpenAPI 3 schema of every endpoint, for signed-in users."""


class SchemaDocs(JsonErrors, SpectacularSwaggerSplitView):
    """/api/docs/: the schema as a page (Swagger UI, from this site's static files)."""


@login_required
@require_safe
def home(request):
    return render(request, "home.html", {
        "system": system_status(),
        "queue": queue_of(request.user, request.team)[:20],
        "recent_runs": recent_runs_of(request.user, request.team)[:10],
    })
