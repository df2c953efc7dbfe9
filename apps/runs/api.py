"""The runs API: start a run of an experiment, list runs, read one with its metrics and evaluation, cancel.

Services' refusals are raised as they are; dlstudio/api_errors.py answers them in the error shape.
"""
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.datasets.selectors import dataset_for
from apps.experiments.selectors import experiment_for, model_summary_of_run
from apps.teams.permissions import require_editor
from dlstudio.openapi import errors
from dlstudio.pagination import KeysetPagination

from . import charts, exports, services
from .models import Run
from .search import SearchError
from .selectors import (
    SORTABLE_RESULTS, diagnosis_of, evaluation_of, metrics_of, run_columns_for, run_for, runs_searched,
)
from .serializers import (
    EvaluationSerializer, MetricsPollSerializer, RunAnnotateSerializer, RunDetailSerializer, RunEvaluateSerializer,
    RunStartSerializer, RunSummarySerializer, VersionEvaluationSerializer, run_detail,
)

# What a live page's poll answers with (RunMetricsApi), read without the rest of the run.
POLLED_COLUMNS = ("status", "progress", "eta_seconds", "epoch", "best_epoch", "dataset_id")


def _int(value):
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise serializers.ValidationError({"filter": [f"{value!r} is not an id."]}) from None


class RunStartApi(APIView):
    @extend_schema(summary="Start a run of the experiment", request=RunStartSerializer, responses={
        201: inline_serializer("RunQueued", {"id": serializers.IntegerField(),
                                             "status": serializers.CharField(default="queued")}),
        **errors(400, 403, 404, _400="An override unknown or out of range (`field`: `config.lr`), or the "
                                     "experiment's dataset is gone.")})
    def post(self, request, experiment_id):
        experiment = experiment_for(request.user, experiment_id)
        require_editor(request.user, experiment.team)
        data = RunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.run_start(experiment=experiment, user=request.user, overrides=data.validated_data["config"])
        return Response({"id": run.pk, "status": run.status}, status=status.HTTP_201_CREATED)


LIST_PARAMETERS = [
    OpenApiParameter("q", str, description="A search: `KEY OP VALUE` joined with and/or and parentheses, e.g. "
                     "`config.lr < 0.01 and best_val_acc > 0.95`."),
    OpenApiParameter("status", str, enum=list(Run.Status.values)), OpenApiParameter("dataset", int),
    OpenApiParameter("experiment", int), OpenApiParameter("arch", str), OpenApiParameter("creator", str),
    OpenApiParameter("tag", str),
    OpenApiParameter("ordering", str, description="A numeric result (" + ", ".join(SORTABLE_RESULTS) + ") or "
                     "config.<key>; a leading - for descending. Runs without that value are left out."),
]


def searched_runs(request):
    """The runs a list or an export names: the user's teams', filtered, searched, ordered."""
    q = request.query_params
    try:
        return runs_searched(request.user, query=q.get("q", ""), ordering=q.get("ordering") or "-created",
                             status=q.get("status"), dataset=_int(q.get("dataset")),
                             experiment=_int(q.get("experiment")), arch=q.get("arch"), creator=q.get("creator"),
                             tag=q.get("tag"))
    except SearchError as exc:
        raise serializers.ValidationError({"q": [f"The search cannot be read: {exc}."]}) from None


@extend_schema(parameters=[*LIST_PARAMETERS, OpenApiParameter("cursor", str), OpenApiParameter("page_size", int),
                           OpenApiParameter("page", int, description="Numbered pages, for older clients.")],
               responses={200: RunSummarySerializer(many=True),
                          **errors(400, _400="A filter is not an id, or the search (q) names the position "
                                             "where it cannot be read.")})
class RunListApi(ListAPIView):
    serializer_class = RunSummarySerializer
    pagination_class = KeysetPagination

    def get_queryset(self):
        return searched_runs(self.request)


class RunExportApi(APIView):
    """The runs of a search as CSV, streamed: config keys as columns, then results (apps/runs/exports.py)."""

    @extend_schema(parameters=LIST_PARAMETERS, responses={(200, "text/csv"): str, **errors(400)})
    def get(self, request):
        runs = searched_runs(request)
        keys = exports.config_columns(runs)
        return exports.download(exports.runs_csv(runs, keys), "runs.csv")


class RunExportJsonApi(APIView):
    """The runs of a search as a JSON array, streamed: each run's config as an object, then its results."""

    @extend_schema(parameters=LIST_PARAMETERS, responses={(200, "application/json"): str, **errors(400)})
    def get(self, request):
        return exports.download(exports.runs_json(searched_runs(request)), "runs.json")


class RunMetricsCsvApi(APIView):
    """A run's epochs as CSV, streamed."""

    @extend_schema(responses={(200, "text/csv"): str, **errors(404)})
    def get(self, request, run_id):
        run = run_columns_for(request.user, run_id, "team_id")
        return exports.download(exports.metrics_csv(run), f"run-{run.pk}-metrics.csv")


class RunMetricsJsonApi(APIView):
    """A run's epochs as a JSON array, streamed."""

    @extend_schema(responses={(200, "application/json"): str, **errors(404)})
    def get(self, request, run_id):
        run = run_columns_for(request.user, run_id, "team_id")
        return exports.download(exports.metrics_json(run), f"run-{run.pk}-metrics.json")


class RunDetailApi(APIView):
    @extend_schema(responses={200: RunDetailSerializer, **errors(404)})
    def get(self, request, run_id):
        return Response(run_detail(run_for(request.user, run_id), request.user))

    @extend_schema(summary="Set a run's notes and tags", request=RunAnnotateSerializer,
                   responses={200: RunDetailSerializer, **errors(400, 403, 404)})
    def patch(self, request, run_id):
        run = run_for(request.user, run_id)
        require_editor(request.user, run.team)
        data = RunAnnotateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.run_annotate(run=run, **data.validated_data)
        return Response(run_detail(run, request.user))


class RunMetricsApi(APIView):
    """New epochs since `after`. When there are some, also the diagnosis and the chart overlays
    (best epoch, overfitting region) they lead to, so a live page redraws its marks without a reload."""

    @extend_schema(parameters=[OpenApiParameter("after", int, description="The last epoch the caller has.")],
                   responses={200: MetricsPollSerializer, **errors(400, 404)})
    def get(self, request, run_id):
        run = run_columns_for(request.user, run_id, *POLLED_COLUMNS)
        after = _int(request.query_params.get("after")) or 0
        body = {"epochs": metrics_of(run, after=after), "status": run.status, "progress": run.progress,
                "eta_seconds": run.eta_seconds, "epoch": run.epoch}
        if body["epochs"]:
            metrics = metrics_of(run) if after else body["epochs"]
            body["diagnosis"] = diagnosis_of(run, metrics)
            body["overlays"] = charts.overlays(best_epoch=run.best_epoch, diagnosis=body["diagnosis"],
                                               last_epoch=metrics[-1]["epoch"])
        return Response(body)


class RunEvaluationApi(APIView):
    @extend_schema(responses={200: EvaluationSerializer, **errors(404, _404="No such run in your teams, or it has "
                                                                             "no evaluation yet.")})
    def get(self, request, run_id):
        evaluation = evaluation_of(run_for(request.user, run_id))
        if evaluation is None:
            raise NotFound("This run has no evaluation yet; it is made when training ends.")
        return Response(EvaluationSerializer(evaluation).data)


class RunModelApi(APIView):
    # The answer of POST /api/experiments/summary, whose serializer names the component.
    @extend_schema(summary="The network the run trains: layers, parameters, multiply-adds",
                   responses={200: {"$ref": "#/components/schemas/ModelSummary"}, **errors(
                       400, 404, _400="The run's config is no longer valid (`field` names the key).",
                       _404="No such run in your teams, or its dataset is deleted and it left no checkpoint.")})
    def get(self, request, run_id):
        summary = model_summary_of_run(run_for(request.user, run_id))
        if summary is None:
            raise NotFound("This run's dataset is deleted and it left no checkpoint, so the size of its images "
                           "is unknown.")
        return Response(summary)


class RunEvaluateApi(APIView):
    @extend_schema(summary="Score the run's best weights on another version of its dataset",
                   request=RunEvaluateSerializer, responses={202: VersionEvaluationSerializer, **errors(
                       400, 403, 404, _400="The run has not succeeded, or the version's classes differ (named).",
                       _404="No such run, or no such dataset, in your teams.")})
    def post(self, request, run_id):
        run = run_for(request.user, run_id)
        require_editor(request.user, run.team)
        data = RunEvaluateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = dataset_for(request.user, data.validated_data["dataset"])
        evaluation = services.run_evaluate_on(run=run, dataset=dataset)
        return Response(VersionEvaluationSerializer(evaluation).data, status=status.HTTP_202_ACCEPTED)


class RunCancelApi(APIView):
    @extend_schema(summary="Cancel a run: a queued one at once, a running one within seconds", request=None,
                   responses={202: inline_serializer("RunCancelled", {
                       "id": serializers.IntegerField(), "status": serializers.ChoiceField(choices=Run.Status.choices),
                       "cancel_requested": serializers.BooleanField()}), **errors(403, 404)})
    def post(self, request, run_id):
        run = run_for(request.user, run_id)
        require_editor(request.user, run.team)
        run = services.run_cancel(run=run)
        return Response({"id": run.pk, "status": run.status, "cancel_requested": run.cancel_requested},
                        status=status.HTTP_202_ACCEPTED)
