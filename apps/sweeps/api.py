"""The sweeps API: start one, list them, read one with its trials, cancel it.

Services' refusals are raised as they are; dlstudio/api_errors.py answers them in the error shape.
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.experiments.selectors import experiment_for
from dlstudio.openapi import errors
from dlstudio.pagination import Pagination

from . import services
from .models import Sweep
from .selectors import sweep_for, sweep_summary, sweeps_for


class SweepCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    experiment = serializers.IntegerField(help_text="An experiment of a team you edit; every trial is a run of it.")
    method = serializers.ChoiceField(choices=Sweep.Method.choices, default="random")
    parameters = serializers.JSONField(help_text='{config key (dotted for nested: "augment.hflip"): space}, a space '
                                                 'being {"values": [...]}, {"uniform": [lo, hi]}, '
                                                 '{"log_uniform": [lo, hi]} or {"int": [lo, hi]}.')
    trials = serializers.JSONField(required=False, default=10, help_text="How many (random and tpe; a grid runs its "
                                                                          "whole product, at most 1,000).")
    max_parallel = serializers.JSONField(required=False, default=2, help_text="Trials queued or running at once.")
    metric = serializers.CharField(required=False, default="val_acc",
                                   help_text="val_acc (default), val_loss, train_acc or train_loss.")
    early_stop = serializers.JSONField(required=False, default=None, allow_null=True,
                                       help_text='null, or {"method": "asha", "min_epochs": 1, "reduction_factor": 3}.')
    seed = serializers.JSONField(required=False, default=0)


class SweepSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Sweep
        fields = ["id", "name", "experiment", "status", "method", "metric", "trials", "max_parallel", "early_stop",
                  "created", "finished_at"]


class SweepListApi(ListAPIView):
    serializer_class = SweepSummarySerializer
    pagination_class = Pagination

    def get_queryset(self):
        return sweeps_for(self.request.user).order_by("-created", "-id")

    @extend_schema(summary="Start a sweep of an experiment", request=SweepCreateSerializer, responses={
        201: inline_serializer("SweepStarted", {"id": serializers.IntegerField(),
                                                "status": serializers.CharField(default="running")}),
        **errors(400, 403, 404, _400="A parameter unknown or not sweepable, an empty, inverted or log range touching "
                                     "0, a grid over 1,000 trials, max_parallel < 1, an unknown metric (`field` "
                                     "names it: `parameters.lr`).")})
    def post(self, request):
        data = SweepCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        experiment = experiment_for(request.user, fields.pop("experiment"))
        sweep = services.sweep_create(user=request.user, experiment=experiment, **fields)
        return Response({"id": sweep.pk, "status": sweep.status}, status=status.HTTP_201_CREATED)


class SweepDetailApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT, **errors(404)})
    def get(self, request, sweep_id):
        return Response(sweep_summary(sweep_for(request.user, sweep_id)))


class SweepCancelApi(APIView):
    @extend_schema(summary="Cancel a sweep: no trial starts any more, its queued and running trials end within "
                           "seconds", request=None,
                   responses={202: inline_serializer("SweepCancelled", {"id": serializers.IntegerField(),
                                                                         "status": serializers.CharField()}),
                              **errors(403, 404)})
    def post(self, request, sweep_id):
        sweep = services.sweep_cancel(sweep=sweep_for(request.user, sweep_id), user=request.user)
        return Response({"id": sweep.pk, "status": sweep.status}, status=status.HTTP_202_ACCEPTED)
