from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from workers.engine import METRIC_KEYS

from .models import EpochMetric, Evaluation, Run, VersionEvaluation
from .selectors import diagnosis_of, metrics_of, traceback_for

RUN_SUMMARY_FIELDS = ["id", "experiment", "dataset", "arch", "status", "attempt", "epoch", "epochs", "progress",
                      "eta_seconds", "best_epoch", "best_val_acc", "test_acc", "device", "worker", "error",
                      "tags", "created_by", "created", "started_at", "finished_at", "parent", "sweep", "pruned",
                      "dataset_hash"]


class RunStartSerializer(serializers.Serializer):
    config = serializers.DictField(required=False, default=dict, help_text="Overrides of the experiment's config.")


class RunAnnotateSerializer(serializers.Serializer):
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=20)


class DiagnosisSerializer(serializers.Serializer):
    overfitting = serializers.BooleanField()
    since_epoch = serializers.IntegerField(allow_null=True, help_text="The first epoch of the overfitting region.")
    message = serializers.CharField(help_text="What the curves say, in one sentence a student can act on.")
    kind = serializers.ChoiceField(choices=["overfitting", "underfitting", "diverging", "healthy", "too_early",
                                            "no_validation"])


class RunSummarySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Run
        fields = RUN_SUMMARY_FIELDS


class VersionEvaluationSerializer(serializers.ModelSerializer):
    """The run's best weights scored on another version of its dataset (`POST /api/runs/<id>/evaluate`)."""

    class Meta:
        model = VersionEvaluation
        fields = ["id", "dataset", "dataset_version", "dataset_hash", "status", "error", *Evaluation.REPORT,
                  "created", "finished_at"]


class RunEvaluateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(help_text="A ready version of the run's dataset (or any dataset of the team) "
                                                 "with the same classes.")


class RunDetailSerializer(RunSummarySerializer):
    """One run: its summary, what its curves say, and what it was trained with. The context's `metrics`:
    its rows when the caller has already read them (the run page); `user`: who asks."""

    diagnosis = serializers.SerializerMethodField()
    traceback = serializers.SerializerMethodField(help_text="Where a failed run failed, for its team's editors "
                                                            "and owners (paths relative to the project); empty "
                                                            "for viewers.")
    environment = serializers.JSONField(read_only=True, help_text=(
        "What the worker trained with: python, torch, torchvision, cuda, cudnn (null without CUDA), gpu (\"cpu\" "
        "without one), host, code, deterministic; empty until a worker claims the run."))
    evaluations = VersionEvaluationSerializer(many=True, read_only=True,
                                              help_text="Its best weights scored on other dataset versions.")

    class Meta(RunSummarySerializer.Meta):
        fields = RUN_SUMMARY_FIELDS + ["diagnosis", "config", "notes", "traceback", "torch_version", "code_version",
                                       "environment", "cancel_requested", "evaluations"]

    @extend_schema_field(DiagnosisSerializer)
    def get_diagnosis(self, run) -> dict:
        metrics = self.context.get("metrics")
        return diagnosis_of(run, metrics_of(run) if metrics is None else metrics)

    def get_traceback(self, run) -> str:
        return traceback_for(self.context["user"], run)


def run_detail(run: Run, user, metrics: list[dict] | None = None) -> dict:
    return RunDetailSerializer(run, context={"metrics": metrics, "user": user}).data


# The shapes below document answers that are built from rows directly (the metrics poll is answered
# many times a second; docs/PERFORMANCE.md).
class EpochMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = EpochMetric
        fields = list(METRIC_KEYS)


class MetricsPollSerializer(serializers.Serializer):
    epochs = EpochMetricSerializer(many=True, help_text="The epochs after `after`, in order.")
    status = serializers.ChoiceField(choices=Run.Status.choices)
    progress = serializers.FloatField()
    eta_seconds = serializers.FloatField(allow_null=True)
    epoch = serializers.IntegerField(help_text="Epochs completed.")
    diagnosis = DiagnosisSerializer(required=False, help_text="When there are new epochs: what they lead to.")
    overlays = serializers.DictField(required=False, help_text="When there are new epochs: the charts' best-epoch "
                                                               "line and overfitting region (Plotly shapes).")


class EvaluationSerializer(serializers.ModelSerializer):
    checkpoint_sha256 = serializers.CharField(help_text="SHA-256 of the checkpoint it scored: the run's best weights, "
                                                        "as the checkpoint download serves them.")

    class Meta:
        model = Evaluation
        fields = [*Evaluation.REPORT, "checkpoint_sha256"]
