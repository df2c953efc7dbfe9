from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from dlstudio.openapi import errors

from . import login_throttle, services
from .selectors import teams_for


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)


class TeamSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=["owner", "editor", "viewer"])


class TokenObtainApi(APIView):
    """POST username and password, get a new API token (named after this login)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(request=TokenRequestSerializer, responses={
        201: inline_serializer("Token", {"token": serializers.CharField(help_text="Shown once; send it as "
                                                                                   "`Authorization: Token <key>`.")}),
        **errors(400, _400="The username or password is wrong (or a field is missing).")})
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        wait = getattr(request, "login_refused_for", 0)
        if wait:
            refused = exceptions.Throttled(wait)
            refused.sentence = login_throttle.refusal(wait)
            raise refused
        if user is None:
            raise serializers.ValidationError({"non_field_errors": ["The username or password is wrong."]})
        _, key = services.token_create(user=user, name="Obtained through the API")
        return Response({"token": key}, status=201)


class TeamListApi(APIView):
    @extend_schema(responses=TeamSerializer(many=True))
    def get(self, request):
        return Response([{"slug": t.slug, "name": t.name, "role": t.role} for t in teams_for(request.user)])
