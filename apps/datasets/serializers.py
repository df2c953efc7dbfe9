from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from workers.engine import COLORS, RESIZE_MODES

from .models import Dataset
from .selectors import class_counts


class DatasetOptionsSerializer(serializers.Serializer):
    """The packing options of `POST /api/datasets`, with their defaults; the web form uses the same rules."""

    val_fraction = serializers.FloatField(default=0.2, min_value=0.0, max_value=0.9)
    test_fraction = serializers.FloatField(default=0.1, min_value=0.0, max_value=0.9)
    image_size = serializers.IntegerField(required=False, allow_null=True, min_value=4, max_value=1024,
                                          default=None)
    resize_mode = serializers.ChoiceField(choices=RESIZE_MODES, default="squash")
    color = serializers.ChoiceField(choices=COLORS, default="auto")
    seed = serializers.IntegerField(default=0, min_value=0, max_value=2**31 - 1)

    def validate(self, attrs):
        if attrs["val_fraction"] + attrs["test_fraction"] >= 0.95:
            raise serializers.ValidationError(
                {"test_fraction": "val_fraction and test_fraction together must leave some images to train on "
                                  "(their sum must be below 0.95)."})
        return attrs


class DatasetCreateSerializer(DatasetOptionsSerializer):
    archive = serializers.FileField(use_url=False)
    name = serializers.CharField(max_length=200)
    team = serializers.SlugField(required=False, allow_blank=True)


class ClassCountSerializer(serializers.Serializer):
    name = serializers.CharField()
    train = serializers.IntegerField()
    val = serializers.IntegerField()
    test = serializers.IntegerField()


class DatasetSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    classes = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ["id", "name", "team", "status", "progress", "error", "num_images", "image_size", "channels",
                  "classes", "health", "options", "created"]

    @extend_schema_field(ClassCountSerializer(many=True))
    def get_classes(self, dataset):
        return class_counts(dataset)
