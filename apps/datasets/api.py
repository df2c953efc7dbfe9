"""The datasets API: list and upload (`/api/datasets`), read and delete (`/api/datasets/<id>`), new
versions (`/api/datasets/<id>/versions`) and the gallery (`/api/datasets/<id>/images`).

A service's refusal (not an archive, a dataset in use) is raised as it is: the API's exception handler
answers it in the error shape (dlstudio/api_errors.py).
"""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.teams.permissions import require_editor
from apps.teams.selectors import default_team
from dlstudio.openapi import errors
from dlstudio.pagination import KEYSET_PARAMETERS, KeysetPagination, Pagination

from . import services
from .models import Image
from .selectors import class_counts, dataset_for, datasets_for, gallery_images
from .serializers import (
    DatasetCreateSerializer, DatasetSerializer, DatasetVersionSerializer, GalleryImageSerializer,
    GalleryQuerySerializer, VersionCreatedSerializer,
)


@extend_schema(methods=["GET"], parameters=KEYSET_PARAMETERS)
class DatasetListCreateApi(ListAPIView):
    """Newest first, by cursor (`?page=` still numbers pages for older clients)."""

    serializer_class = DatasetSerializer
    pagination_class = KeysetPagination

    def get_queryset(self):
        return datasets_for(self.request.user).prefetch_related("classes").order_by("-created", "-id")

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


class DatasetVersionsApi(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={"multipart/form-data": DatasetVersionSerializer, "application/json": DatasetVersionSerializer},
        responses={201: VersionCreatedSerializer, **errors(
            400, 403, 404, 413, _400="No change, an index out of range, a bad class name, or not an archive "
                                     "(`field` names it).")})
    def post(self, request, dataset_id):
        parent = dataset_for(request.user, dataset_id)
        require_editor(request.user, parent.team)
        data = DatasetVersionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        dataset = services.dataset_version_create(parent=parent, user=request.user, upload=values.get("archive"),
                                                  exclude=values.get("exclude"), relabel=values.get("relabel"),
                                                  labels=values["labels"])
        return Response({"id": dataset.pk, "version": dataset.version, "status": dataset.status},
                        status=status.HTTP_201_CREATED)


class DatasetImagesApi(ListAPIView):
    serializer_class = GalleryImageSerializer
    pagination_class = Pagination

    @extend_schema(parameters=[GalleryQuerySerializer], responses={200: GalleryImageSerializer(many=True),
                                                                   **errors(400, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        self.dataset = dataset_for(self.request.user, self.kwargs["dataset_id"])
        self.classes = [c["name"] for c in class_counts(self.dataset)]
        query = GalleryQuerySerializer(data=self.request.query_params, context={"classes": self.classes})
        query.is_valid(raise_exception=True)
        chosen = query.validated_data
        label = self.classes.index(chosen["class"]) if "class" in chosen else None
        split = Image.Split[chosen["split"].upper()].value if "split" in chosen else None
        return gallery_images(self.dataset, label=label, split=split, issue=chosen.get("issue"))

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "classes": getattr(self, "classes", [])}
