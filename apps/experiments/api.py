"""The experiments API: create one, read one, its LR range test (read the latest, start one), and the
summary of the network a config builds, before training.

Services' refusals are raised as they are; dlstudio/api_errors.py answers them in the error shape.
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.datasets.selectors import dataset_for
from apps.runs.selectors import runs_of_experiment
from apps.teams.permissions import require_editor
from apps.weights.selectors import weights_file_for
from dlstudio.openapi import errors
from dlstudio.pagination import KEYSET_PARAMETERS, KeysetPagination

from . import charts, services
from .models import Experiment, LRFinding
from .selectors import experiment_for, experiments_for, latest_lr_finding, model_summary_of


class ExperimentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    dataset = serializers.IntegerField(help_text="A ready dataset of a team you edit.")
    config = serializers.DictField(required=False, default=dict,
                                   help_text="The training config (docs/CONFIG.md); every key optional.")
    weights_file = serializers.IntegerField(required=False, allow_null=True, default=None,
                                            help_text="A team weights file, with pretrained \"imagenet\".")


class ModelSummaryRequestSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(help_text="A ready dataset of one of your teams: its image size, "
                                                 "colour and classes shape the network.")
    config = serializers.DictField(required=False, default=dict,
                                   help_text="A training config (docs/CONFIG.md); every key optional.")


class ModelLayerSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The module's path in the network, as in its weights (`features.conv1`).")
    type = serializers.CharField(help_text="The module's class: Conv2d, Bottleneck, Linear, ...")
    output_shape = serializers.ListField(child=serializers.IntegerField(), allow_null=True, help_text=(
        "What it outputs for one image: [channels, height, width] or [features]; null where the image never "
        "got to."))
    params = serializers.IntegerField(help_text="Its parameters, those of the modules inside it included.")


class ModelInputSerializer(serializers.Serializer):
    channels = serializers.IntegerField()
    image_size = serializers.IntegerField()
    num_classes = serializers.IntegerField()


class ModelSummarySerializer(serializers.Serializer):
    layers = ModelLayerSerializer(many=True)
    total_params = serializers.IntegerField(help_text="Equals the parameter count of the network training builds.")
    trainable_params = serializers.IntegerField(help_text=(
        "Those that learn in the first epoch: all of them, or only the head's while freeze_backbone_epochs "
        "holds the backbone."))
    mult_adds = serializers.IntegerField(allow_null=True, help_text=(
        "Multiply-adds of one image's forward pass; null when the network cannot run on the images."))
    warnings = serializers.ListField(child=serializers.CharField(), help_text=(
        "A sentence when the images are too small for the architecture; empty otherwise."))
    input = ModelInputSerializer(help_text="The images and classes it was summarised for.")


class ExperimentSerializer(serializers.ModelSerializer):
    runs = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = ["id", "name", "dataset", "config", "weights_file", "runs", "created"]

    def get_runs(self, experiment) -> list[int]:
        return list(runs_of_experiment(experiment).values_list("id", flat=True))


class LRFindingSerializer(serializers.ModelSerializer):
    figure = serializers.SerializerMethodField(help_text="The curve as a Plotly figure, once the test succeeded.")

    class Meta:
        model = LRFinding
        fields = ["id", "experiment", "status", "lrs", "losses", "suggested_lr", "error", "created", "finished_at",
                  "figure"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_figure(self, finding):
        return charts.lr_finder_figure(finding.lrs, finding.losses, finding.suggested_lr)

    def to_representation(self, finding):
        body = super().to_representation(finding)
        if finding.status != LRFinding.Status.SUCCEEDED:
            del body["figure"]  # a finished test carries its chart, for the page to draw
        return body


class ExperimentSummarySerializer(serializers.ModelSerializer):
    """An experiment in a list: without its runs, which a list would read once per experiment."""

    class Meta:
        model = Experiment
        fields = ["id", "name", "team", "dataset", "config", "weights_file", "created"]

    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)


@extend_schema(methods=["GET"], parameters=KEYSET_PARAMETERS)
class ExperimentCreateApi(ListAPIView):
    """GET: the experiments of the user's teams, newest first, by cursor (`?page=` numbers pages)."""

    serializer_class = ExperimentSummarySerializer
    pagination_class = KeysetPagination

    def get_queryset(self):
        return experiments_for(self.request.user).order_by("-created", "-id")

    @extend_schema(request=ExperimentCreateSerializer, responses={
        201: inline_serializer("ExperimentCreated", {"id": serializers.IntegerField()}),
        **errors(400, 403, 404, _400="A config key unknown or out of range, or a dataset that is not ready; "
                                     "`field` names it (`config.lr`).")})
    def post(self, request):
        data = ExperimentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = dataset_for(request.user, data.validated_data["dataset"])
        require_editor(request.user, dataset.team)
        weights_id = data.validated_data["weights_file"]
        experiment = services.experiment_create(
            team=dataset.team, user=request.user, name=data.validated_data["name"], dataset=dataset,
            config=data.validated_data["config"],
            weights_file=weights_file_for(request.user, weights_id) if weights_id is not None else None)
        return Response({"id": experiment.pk}, status=status.HTTP_201_CREATED)


class ModelSummaryApi(APIView):
    """Writes nothing, so viewers may ask too."""

    @extend_schema(summary="The network a config builds, before training", request=ModelSummaryRequestSerializer,
                   responses={200: ModelSummarySerializer, **errors(
                       400, 404, _400="A config key unknown or out of range (`field`: `config.arch`), or a dataset "
                                      "that is not ready.",
                       _404="No such dataset in your teams.")})
    def post(self, request):
        data = ModelSummaryRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = dataset_for(request.user, data.validated_data["dataset"])
        config = services.config_validate(data.validated_data["config"])
        return Response(model_summary_of(config=config, dataset=dataset))


class ExperimentDetailApi(APIView):
    @extend_schema(responses={200: ExperimentSerializer, **errors(404)})
    def get(self, request, experiment_id):
        return Response(ExperimentSerializer(experiment_for(request.user, experiment_id)).data)


class LRFinderApi(APIView):
    @extend_schema(summary="The experiment's latest LR range test",
                   responses={200: LRFindingSerializer, **errors(404, _404="No such experiment in your teams, or it "
                                                                              "has no LR range test yet.")})
    def get(self, request, experiment_id):
        finding = latest_lr_finding(experiment_for(request.user, experiment_id))
        if finding is None:
            raise NotFound("This experiment has no LR range test yet; POST here to start one.")
        return Response(LRFindingSerializer(finding).data)

    @extend_schema(summary="Start an LR range test of the experiment's config", request=None, responses={
        201: LRFindingSerializer, **errors(400, 403, 404, _400="One is already queued or running, or the dataset is "
                                                                 "not ready.")})
    def post(self, request, experiment_id):
        finding = services.lr_finding_start(experiment=experiment_for(request.user, experiment_id), user=request.user)
        return Response(LRFindingSerializer(finding).data, status=status.HTTP_201_CREATED)
