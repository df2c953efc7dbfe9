"""Predicting over the API: `POST /api/runs/<id>/predict`, for viewers too (predicting is reading)."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.runs.selectors import run_columns_for
from dlstudio.openapi import errors

from . import predictors


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
