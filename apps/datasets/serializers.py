from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dlstudio import bounded_json
from workers.engine import COLORS, LABEL_SOURCES, RESIZE_MODES

from .models import Dataset
from .selectors import ISSUES, class_counts

LABEL_CHOICES = (*LABEL_SOURCES, "auto")


class DatasetOptionsSerializer(serializers.Serializer):
    """The packing options of `POST /api/datasets`, with their defaults; the web form uses the same rules."""

    val_fraction = serializers.FloatField(default=0.2, min_value=0.0, max_value=0.9)
    test_fraction = serializers.FloatField(default=0.1, min_value=0.0, max_value=0.9)
    image_size = serializers.IntegerField(required=False, allow_null=True, min_value=4, max_value=1024,
                                          default=None)
    resize_mode = serializers.ChoiceField(choices=RESIZE_MODES, default="squash")
    color = serializers.ChoiceField(choices=COLORS, default="auto")
    seed = serializers.IntegerField(default=0, min_value=0, max_value=2**31 - 1)
    labels = serializers.ChoiceField(choices=LABEL_CHOICES, default="folders",
                                     help_text="Where each image's class comes from: class folders, the file name "
                                               "(cat.0.jpg), labels.csv, or auto (detected from the listing).")
    allow_upscale = serializers.BooleanField(
        default=False, help_text="Confirms an image_size more than 4 times the largest image's side: without it "
                                 "such an upload is refused (enlarging tiny images makes a huge pack, no detail).")

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
                  "classes", "health", "options", "created", "version", "parent", "content_hash"]

    @extend_schema_field(ClassCountSerializer(many=True))
    def get_classes(self, dataset):
        return class_counts(dataset)


class JsonOrText(serializers.JSONField):
    """A JSON value, also accepted as JSON text (a multipart form carries every field as text)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = bounded_json.loads(data) if data.strip() else None
            except bounded_json.TooDeep as exc:
                raise serializers.ValidationError(str(exc)) from None
            except ValueError:
                raise serializers.ValidationError("Not valid JSON.") from None
        return super().to_internal_value(data)


class DatasetVersionSerializer(serializers.Serializer):
    """`POST /api/datasets/<id>/versions`: images to add (an archive), exclude and relabel; at least one."""

    archive = serializers.FileField(use_url=False, required=False)
    exclude = JsonOrText(required=False, help_text="Image indices to leave out: [3, 17].")
    relabel = JsonOrText(required=False, help_text='Image index -> class name: {"5": "dog"}.')
    labels = serializers.ChoiceField(choices=LABEL_CHOICES, default="folders")


class VersionCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    status = serializers.CharField()


class GalleryQuerySerializer(serializers.Serializer):
    """The filters of `GET /api/datasets/<id>/images`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["class"] = serializers.CharField(required=False, help_text="A class name of the dataset.")

    def validate_class(self, value):
        if value not in self.context.get("classes", ()):
            raise serializers.ValidationError(f"The dataset has no class {value[:60]!r}.")
        return value

    split = serializers.ChoiceField(choices=["train", "val", "test"], required=False)
    issue = serializers.ChoiceField(choices=ISSUES, required=False)


class GalleryImageSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    thumbnail = serializers.CharField()

    def to_representation(self, image):
        classes, request = self.context["classes"], self.context["request"]
        return {"index": image.index, "class": classes[image.label], "split": image.get_split_display(),
                "name": image.name, "thumbnail": request.build_absolute_uri(
                    reverse("dataset_thumbnail", args=[image.dataset_id, image.index]))}
