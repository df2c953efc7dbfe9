from rest_framework import serializers

from .models import Experiment, Run

RUN_SUMMARY_FIELDS = ["id", "experiment", "dataset", "arch", "status", "attempt", "epoch", "epochs", "progress",
                      "eta_seconds", "best_epoch", "best_val_acc", "test_acc", "device", "worker", "error",
                      "tags", "created_by", "created", "started_at", "finished_at", "parent"]


class ExperimentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    dataset = serializers.IntegerField()
    config = serializers.DictField(required=False, default=dict)
    weights_file = serializers.IntegerField(required=False, allow_null=True, default=None,
                                            help_text="A team weights file, with pretrained \"imagenet\".")


class RunStartSerializer(serializers.Serializer):
    config = serializers.DictField(required=False, default=dict)


class RunAnnotateSerializer(serializers.Serializer):
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=20)


class ExperimentSerializer(serializers.ModelSerializer):
    runs = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = ["id", "name", "dataset", "config", "weights_file", "runs", "created"]

    def get_runs(self, experiment):
        return list(experiment.runs.order_by("-created", "-id").values_list("id", flat=True))


class RunSummarySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Run
        fields = RUN_SUMMARY_FIELDS
