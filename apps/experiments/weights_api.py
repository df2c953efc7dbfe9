"""The weights library over the API: `api/weights` (list, upload) and `api/weights/<id>` (get, delete)."""
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.datasets.api import default_team
from apps.teams.models import Membership
from apps.teams.permissions import require_role
from dlstudio.pagination import Pagination

from .models import WeightsFile
from .weights import weights_file_create, weights_file_delete, weights_file_for, weights_files_for


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


class WeightsListCreateApi(ListAPIView):
    serializer_class = WeightsFileSerializer
    pagination_class = Pagination

    def get_queryset(self):
        files = weights_files_for(self.request.user)
        if self.request.query_params.get("arch"):
            files = files.filter(arch=self.request.query_params["arch"])
        return files

    def post(self, request):
        # Who may upload, before what was uploaded: a viewer or an outsider hears only that.
        team = default_team(request.user, str(request.data.get("team") or "") or None)
        require_role(request.user, team, Membership.Role.EDITOR)
        data = WeightsUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            weights_file = weights_file_create(team=team, user=request.user, name=values["name"], arch=values["arch"],
                                               upload=values["file"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError({exc.code or "file": exc.messages[0]}) from None
        return Response(WeightsFileSerializer(weights_file).data, status=status.HTTP_201_CREATED)


class WeightsDetailApi(APIView):
    def get(self, request, weights_id):
        return Response(WeightsFileSerializer(weights_file_for(request.user, weights_id)).data)

    def delete(self, request, weights_id):
        weights_file = weights_file_for(request.user, weights_id)
        require_role(request.user, weights_file.team, Membership.Role.EDITOR)
        try:
            weights_file_delete(weights_file=weights_file)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0]) from None  # 400, as for a dataset in use
        return Response(status=status.HTTP_204_NO_CONTENT)
