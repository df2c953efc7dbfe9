"""The datasets API: list and upload (`/api/datasets`), read and delete (`/api/datasets/<id>`).

A service's refusal (not an archive, a dataset in use) is raised as it is: the API's exception handler
answers it in the error shape (dlstudio/api_errors.py).
"""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.teams.permissions import require_editor
from apps.teams.selectors import default_team
from dlstudio.openapi import errors
from dlstudio.pagination import Pagination

from . import services
from .selectors import dataset_for, datasets_for
from .serializers import DatasetCreateSerializer, DatasetSerializer


class DatasetListCreateApi(ListAPIView):
    serializer_class = DatasetSerializer
    pagination_class = Pagination

    def get_queryset(self):
        return datasets_for(self.request.user).prefetch_related("classes")

    @extend_schema(request={"multipart/form-data": DatasetCreateSerializer}, responses={
        201: inline_serializer("DatasetQueued", {"id": serializers.IntegerField(),
                                                 "status": serializers.CharField(default="ingesting")}),
        **errors(400, 403, 404, 413, _400="Not a zip or tar archive, or an option out of range (`field` names it).",
                 _404="`team` names a team you are not in.")})
    def post(self, request):
        # Who may upload, before what was uploaded: a viewer or an outsider hears only that.
        team = default_team(request.user, str(request.data.get("team") or "") or None)
        require_editor(request.user, team)
        data = DatasetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values.pop("team", None)
        archive, name = values.pop("archive"), values.pop("name")
        dataset = services.dataset_create(team=team, user=request.user, name=name, upload=archive, options=values)
        return Response({"id": dataset.pk, "status": dataset.status}, status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    @extend_schema(responses={200: DatasetSerializer, **errors(404)})
    def get(self, request, dataset_id):
        return Response(DatasetSerializer(dataset_for(request.user, dataset_id)).data)

    @extend_schema(responses={204: None, **errors(400, 403, 404, _400="A run that is queued or running uses it.")})
    def delete(self, request, dataset_id):
        dataset = dataset_for(request.user, dataset_id)
        require_editor(request.user, dataset.team)
        services.dataset_delete(dataset=dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)
