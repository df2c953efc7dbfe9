from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.teams.models import Membership
from apps.teams.permissions import require_role
from apps.teams.selectors import team_for, teams_for
from dlstudio.pagination import Pagination

from . import services
from .selectors import dataset_for, datasets_for
from .serializers import DatasetCreateSerializer, DatasetSerializer


def default_team(user, slug: str | None):
    """The named team, else the caller's only team, else their personal one."""
    if slug:
        return team_for(user, slug)
    teams = list(teams_for(user)[:2])
    return teams[0] if len(teams) == 1 else next(t for t in teams_for(user) if t.personal)


class DatasetListCreateApi(ListAPIView):
    serializer_class = DatasetSerializer
    pagination_class = Pagination

    def get_queryset(self):
        return datasets_for(self.request.user).prefetch_related("classes")

    def post(self, request):
        # Who may upload, before what was uploaded: a viewer or an outsider hears only that.
        team = default_team(request.user, str(request.data.get("team") or "") or None)
        require_role(request.user, team, Membership.Role.EDITOR)
        data = DatasetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values.pop("team", None)
        archive, name = values.pop("archive"), values.pop("name")
        try:
            dataset = services.dataset_create(team=team, user=request.user, name=name, upload=archive,
                                              options=values)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"archive": exc.messages}) from None
        return Response({"id": dataset.pk, "status": dataset.status}, status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    def get(self, request, dataset_id):
        return Response(DatasetSerializer(dataset_for(request.user, dataset_id)).data)

    def delete(self, request, dataset_id):
        dataset = dataset_for(request.user, dataset_id)
        require_role(request.user, dataset.team, Membership.Role.EDITOR)
        try:
            services.dataset_delete(dataset=dataset)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0]) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("datasets", DatasetListCreateApi.as_view(), name="api_datasets"),
    path("datasets/<int:dataset_id>", DatasetDetailApi.as_view(), name="api_dataset"),
]
