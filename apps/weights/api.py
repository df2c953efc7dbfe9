"""The weights library over the API: `api/weights` (list, upload) and `api/weights/<id>` (get, delete)."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.teams.permissions import require_editor
from apps.teams.selectors import default_team
from dlstudio.openapi import errors
from dlstudio.pagination import Pagination

from .models import WeightsFile
from .selectors import weights_file_for, weights_files_for
from .services import weights_file_create, weights_file_delete


class WeightsFileSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = WeightsFile
        fields = ["id", "team", "name", "arch", "format", "size", "sha256", "tensors", "created_by", "created"]


class WeightsUploadSerializer(serializers.Serializer):
    file = serializers.FileField(use_url=False)
    arch = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    team = serializers.SlugField(required=False, allow_blank=True)


@extend_schema(methods=["GET"], parameters=[OpenApiParameter("arch", str, description="Only files for this arch.")])
class WeightsListCreateApi(ListAPIView):
    serializer_class = WeightsFileSerializer
    pagination_class = Pagination

    def get_queryset(self):
        files = weights_files_for(self.request.user)
        if self.request.query_params.get("arch"):
            files = files.filter(arch=self.request.query_params["arch"])
        return files

    @extend_schema(request={"multipart/form-data": WeightsUploadSerializer}, responses={
        201: WeightsFileSerializer,
        **errors(400, 403, 404, 413, _400="Not a state dict of tensors that loads into `arch` (`field`: file or "
                                          "arch), checked without running anything in it.",
                 _404="`team` names a team you are not in.")})
    def post(self, request):
        # Who may upload, before what was uploaded: a viewer or an outsider hears only that.
        team = default_team(request.user, str(request.data.get("team") or "") or None)
        require_editor(request.user, team)
        data = WeightsUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        weights_file = weights_file_create(team=team, user=request.user, name=values["name"], arch=values["arch"],
                                           upload=values["file"])
        return Response(WeightsFileSerializer(weights_file).data, status=status.HTTP_201_CREATED)


class WeightsDetailApi(APIView):
    @extend_schema(responses={200: WeightsFileSerializer, **errors(404)})
    def get(self, request, weights_id):
        return Response(WeightsFileSerializer(weights_file_for(request.user, weights_id)).data)

    @extend_schema(responses={204: None, **errors(400, 403, 404, _400="A queued or running run reads it.")})
    def delete(self, request, weights_id):
        weights_file = weights_file_for(request.user, weights_id)
        require_editor(request.user, weights_file.team)
        weights_file_delete(weights_file=weights_file)
        return Response(status=status.HTTP_204_NO_CONTENT)
