from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.datasets.models import DatasetClass
from apps.datasets.selectors import dataset_for
from apps.teams.models import Membership
from apps.teams.permissions import require_role
from dlstudio.pagination import Pagination

from . import charts, predicting, services
from .diagnosis import diagnose
from .models import Evaluation
from .selectors import experiment_for, metrics_of, run_columns_for, run_for, runs_filtered
from .weights import weights_file_for
from .serializers import (ExperimentCreateSerializer, ExperimentSerializer, RunAnnotateSerializer,
                          RunStartSerializer, RunSummarySerializer)


def as_api_error(exc: DjangoValidationError) -> serializers.ValidationError:
    """A service's ValidationError (its code names the field) in the API's error shape."""
    field = exc.code if isinstance(getattr(exc, "code", None), str) else None
    return serializers.ValidationError({field: exc.messages} if field else exc.messages)


# What a live page's poll answers with (RunMetricsApi), read without the rest of the run.
POLLED_COLUMNS = ("status", "progress", "eta_seconds", "epoch", "best_epoch", "dataset_id")


def run_diagnosis(run, metrics: list[dict]) -> dict:
    num_classes = DatasetClass.objects.filter(dataset_id=run.dataset_id).count() if run.dataset_id else None
    return diagnose(metrics, num_classes=num_classes)


def run_detail(run, metrics: list[dict] | None = None) -> dict:
    """The run's API body. `metrics`: its rows when the caller has already read them (the run page)."""
    body = RunSummarySerializer(run).data
    metrics = metrics_of(run) if metrics is None else metrics
    body["diagnosis"] = run_diagnosis(run, metrics)
    body.update(config=run.config, notes=run.notes, traceback=run.traceback, torch_version=run.torch_version,
                code_version=run.code_version, cancel_requested=run.cancel_requested)
    return body


class ExperimentCreateApi(APIView):
    def post(self, request):
        data = ExperimentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = dataset_for(request.user, data.validated_data["dataset"])
        require_role(request.user, dataset.team, Membership.Role.EDITOR)
        weights_id = data.validated_data["weights_file"]
        weights_file = weights_file_for(request.user, weights_id) if weights_id is not None else None
        try:
            experiment = services.experiment_create(team=dataset.team, user=request.user,
                                                    name=data.validated_data["name"], dataset=dataset,
                                                    config=data.validated_data["config"], weights_file=weights_file)
        except DjangoValidationError as exc:
            raise as_api_error(exc) from None
        return Response({"id": experiment.pk}, status=status.HTTP_201_CREATED)


class ExperimentDetailApi(APIView):
    def get(self, request, experiment_id):
        return Response(ExperimentSerializer(experiment_for(request.user, experiment_id)).data)


class RunStartApi(APIView):
    def post(self, request, experiment_id):
        experiment = experiment_for(request.user, experiment_id)
        require_role(request.user, experiment.team, Membership.Role.EDITOR)
        data = RunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            run = services.run_start(experiment=experiment, user=request.user,
                                     overrides=data.validated_data["config"])
        except DjangoValidationError as exc:
            raise as_api_error(exc) from None
        return Response({"id": run.pk, "status": run.status}, status=status.HTTP_201_CREATED)


class RunListApi(ListAPIView):
    serializer_class = RunSummarySerializer
    pagination_class = Pagination

    def get_queryset(self):
        q = self.request.query_params
        return runs_filtered(self.request.user, status=q.get("status"), dataset=_int(q.get("dataset")),
                             experiment=_int(q.get("experiment")), arch=q.get("arch"), creator=q.get("creator"),
                             tag=q.get("tag"), ordering=q.get("ordering") or "-created")


def _int(value):
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise serializers.ValidationError({"filter": [f"{value!r} is not an id."]}) from None


class RunDetailApi(APIView):
    def get(self, request, run_id):
        return Response(run_detail(run_for(request.user, run_id)))

    def patch(self, request, run_id):
        run = run_for(request.user, run_id)
        require_role(request.user, run.team, Membership.Role.EDITOR)
        data = RunAnnotateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.run_annotate(run=run, **data.validated_data)
        except DjangoValidationError as exc:
            raise as_api_error(exc) from None
        return Response(run_detail(run))


class RunMetricsApi(APIView):
    """New epochs since `after`. When there are some, also the diagnosis and the chart overlays
    (best epoch, overfitting region) they lead to, so a live page redraws its marks without a reload."""

    def get(self, request, run_id):
        run = run_columns_for(request.user, run_id, *POLLED_COLUMNS)
        after = _int(request.query_params.get("after")) or 0
        body = {"epochs": metrics_of(run, after=after), "status": run.status, "progress": run.progress,
                "eta_seconds": run.eta_seconds, "epoch": run.epoch}
        if body["epochs"]:
            metrics = metrics_of(run) if after else body["epochs"]
            diagnosis = run_diagnosis(run, metrics)
            body["diagnosis"] = diagnosis
            body["overlays"] = charts.overlays(best_epoch=run.best_epoch, diagnosis=diagnosis,
                                               last_epoch=metrics[-1]["epoch"])
        return Response(body)


class RunEvaluationApi(APIView):
    def get(self, request, run_id):
        run = run_for(request.user, run_id)
        evaluation = Evaluation.objects.filter(run=run).first()
        if evaluation is None:
            return Response({"error": "This run has no evaluation yet; it is made when training ends."},
                            status=status.HTTP_404_NOT_FOUND)
        return Response({"split": evaluation.split, "accuracy": evaluation.accuracy, "classes": evaluation.classes,
                         "confusion": evaluation.confusion, "per_class": evaluation.per_class,
                         "misclassified": evaluation.misclassified, "top_k_accuracy": evaluation.top_k_accuracy})


class RunCancelApi(APIView):
    def post(self, request, run_id):
        run = run_for(request.user, run_id)
        require_role(request.user, run.team, Membership.Role.EDITOR)
        run = services.run_cancel(run=run)
        return Response({"id": run.pk, "status": run.status, "cancel_requested": run.cancel_requested},
                        status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path("experiments", ExperimentCreateApi.as_view(), name="api_experiments"),
    path("experiments/<int:experiment_id>", ExperimentDetailApi.as_view(), name="api_experiment"),
    path("experiments/<int:experiment_id>/runs", RunStartApi.as_view(), name="api_run_start"),
    path("runs", RunListApi.as_view(), name="api_runs"),
    path("runs/<int:run_id>", RunDetailApi.as_view(), name="api_run"),
    path("runs/<int:run_id>/metrics", RunMetricsApi.as_view(), name="api_run_metrics"),
    path("runs/<int:run_id>/evaluation", RunEvaluationApi.as_view(), name="api_run_evaluation"),
    path("runs/<int:run_id>/cancel", RunCancelApi.as_view(), name="api_run_cancel"),
]


class RunPredictApi(APIView):
    """Top-k classes for one image (`image`) or up to 64 (`images`); viewers may predict too."""

    def post(self, request, run_id):
        run = run_columns_for(request.user, run_id, "checkpoint_dir")
        single = request.FILES.getlist("image")
        files = single or request.FILES.getlist("images")
        try:
            top_k = int(request.data.get("top_k", 5))
        except (TypeError, ValueError):
            raise serializers.ValidationError({"top_k": ["top_k must be a whole number."]}) from None
        try:
            results, ms = predicting.predict(run=run, files=files, top_k=top_k)
        except DjangoValidationError as exc:
            raise as_api_error(exc) from None
        if single and len(files) == 1:
            return Response({"predictions": results[0]["predictions"], "inference_ms": round(ms, 3)})
        return Response({"results": results, "inference_ms": round(ms, 3)})


predict_urlpatterns = [
    path("runs/<int:run_id>/predict", RunPredictApi.as_view(), name="api_run_predict"),
]
