"""Predicting and explaining over the API, for viewers too (both are reading): `POST /api/runs/<id>/predict`,
`/explain` and `/activations`."""
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.runs.selectors import run_columns_for
from dlstudio.openapi import errors

from . import explaining, predictors


class PredictRequestSerializer(serializers.Serializer):
    image = serializers.FileField(required=False, help_text="One image; the answer is `predictions`.")
    images = serializers.ListField(child=serializers.FileField(), required=False,
                                   help_text=f"Up to {predictors.MAX_IMAGES} images; the answer is `results`.")
    top_k = serializers.IntegerField(required=False, default=5, min_value=1, max_value=predictors.MAX_TOP_K)


class PredictionSerializer(serializers.Serializer):
    label = serializers.CharField()
    probability = serializers.FloatField()


class ImageResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    predictions = PredictionSerializer(many=True)


class PredictResponseSerializer(serializers.Serializer):
    predictions = PredictionSerializer(many=True, required=False, help_text="For one `image`, best first.")
    results = ImageResultSerializer(many=True, required=False, help_text="For `images`, in the order sent.")
    inference_ms = serializers.FloatField(help_text="Time spent decoding and inferring, in milliseconds.")


class RunPredictApi(APIView):
    """Top-k classes for one image (`image`) or up to 64 (`images`)."""

    @extend_schema(request={"multipart/form-data": PredictRequestSerializer}, responses={
        200: PredictResponseSerializer,
        **errors(400, 404, 413, _400="No image, too many, one that is not a usable image (`error` names it) or "
                                     "too large, a bad top_k, or a run without usable weights yet.")})
    def post(self, request, run_id):
        run = run_columns_for(request.user, run_id, "best_checkpoint")
        single = request.FILES.getlist("image")
        files = single or request.FILES.getlist("images")
        try:
            top_k = int(request.data.get("top_k", 5))
        except (TypeError, ValueError):
            raise serializers.ValidationError({"top_k": ["top_k must be a whole number."]}) from None
        results, ms = predictors.predict(run=run, files=files, top_k=top_k)
        if single and len(files) == 1:
            return Response({"predictions": results[0]["predictions"], "inference_ms": round(ms, 3)})
        return Response({"results": results, "inference_ms": round(ms, 3)})


# `class` is a Python keyword, so these two are built from dicts.
ExplainRequestSerializer = inline_serializer("ExplainRequest", {
    "image": serializers.FileField(help_text="The image."),
    "class": serializers.CharField(required=False, help_text="The class to explain; the most likely one when "
                                                             "left out."),
})

ExplainResponseSerializer = inline_serializer("ExplainResponse", {
    "predictions": PredictionSerializer(many=True, help_text="Best first."),
    "method": serializers.CharField(help_text="How the heatmap was made: `gradcam`."),
    "class": serializers.CharField(help_text="The class the heatmap is for."),
    "heatmap": serializers.CharField(help_text="A PNG data URL: the image as the model saw it (its input size), "
                                               "with where it looked for `class` overlaid, brightest where most."),
    "inference_ms": serializers.FloatField(),
})


class RunExplainApi(APIView):
    """Grad-CAM: where the model looked in an uploaded image, for `class` or its most likely class."""

    @extend_schema(request={"multipart/form-data": ExplainRequestSerializer}, responses={
        200: ExplainResponseSerializer,
        **errors(400, 404, _400="No image, one that is not a usable image (`error` names it), a class the run does "
                                "not have, or a run without usable weights yet.")})
    def post(self, request, run_id):
        run = run_columns_for(request.user, run_id, "best_checkpoint")
        return Response(explaining.explain_upload(run=run, upload=request.FILES.get("image"),
                                                  label=request.data.get("class")))


class RunExplainDatasetImageApi(APIView):
    """Grad-CAM for image `index` of the dataset the run trained on (as its misclassified list names
    them), for `?class=` or its most likely class."""

    @extend_schema(parameters=[OpenApiParameter("class", str, description="The class to explain.")],
                   responses={200: ExplainResponseSerializer, **errors(400, 404)})
    def get(self, request, run_id, index):
        run = run_columns_for(request.user, run_id, "best_checkpoint", "dataset")
        return Response(explaining.explain_dataset_image(run=run, index=index,
                                                         label=request.query_params.get("class")))


class StageSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The stage's module inside the network.")
    shape = serializers.ListField(child=serializers.IntegerField(), help_text="Channels, height, width.")
    channels = serializers.ListField(child=serializers.IntegerField(), help_text="The channels shown, most "
                                                                                 "active first.")
    image = serializers.CharField(help_text="A PNG data URL: those channels' maps on a grid.")


class ActivationsResponseSerializer(serializers.Serializer):
    stages = StageSerializer(many=True, help_text="From the input side to the output side.")
    inference_ms = serializers.FloatField()


class RunActivationsApi(APIView):
    """The activation maps of each convolutional stage for an image: its most active channels."""

    @extend_schema(request={"multipart/form-data": ExplainRequestSerializer}, responses={
        200: ActivationsResponseSerializer, **errors(400, 404)})
    def post(self, request, run_id):
        run = run_columns_for(request.user, run_id, "best_checkpoint")
        return Response(explaining.activations_of(run=run, upload=request.FILES.get("image")))
