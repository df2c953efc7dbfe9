from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from dlstudio.openapi import errors

from . import login_throttle, services
from .permissions import require_invitee, require_owner
from .selectors import (
    invitation_for, invitations_for, pending_invitation_in, pending_invitations_of, team_for, teams_for,
)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)


ROLES = ["owner", "editor", "viewer"]


class TeamSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    owner = serializers.CharField(source="owner_name", help_text="The username of its longest-standing owner: "
                                                                  "two teams called alike are told apart by it.")


class InvitedTeamSerializer(serializers.Serializer):
    slug = serializers.SlugField(source="team.slug")
    name = serializers.CharField(source="team.name")
    owner = serializers.CharField(source="owner_name")


class InvitationSerializer(serializers.Serializer):
    """An invitation addressed to the caller."""

    id = serializers.IntegerField()
    team = InvitedTeamSerializer(source="*")
    role = serializers.ChoiceField(choices=ROLES, help_text="The role accepting gives.")
    invited_by = serializers.CharField(source="invited_by.username", allow_null=True)
    created = serializers.DateTimeField()
    looks_like = serializers.CharField(allow_null=True, help_text="The name of one of your teams that reads the same "
                                                                   "as this one's, else null: check the owner.")


class TeamInvitationSerializer(serializers.Serializer):
    """A team's invitation waiting for an answer, as its members see it."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    invited_by = serializers.CharField(source="invited_by.username", allow_null=True)
    created = serializers.DateTimeField()


class InviteSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=ROLES, default="editor")


class InvitedSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    team = serializers.SlugField()
    status = serializers.CharField(default="pending")
    message = serializers.CharField()


class AnsweredSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["accepted", "declined"])
    team = TeamSerializer(required=False, help_text="The team joined (accepting only).")


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
        return Response(TeamSerializer(teams_for(request.user), many=True).data)


class TeamInvitationsApi(APIView):
    """A team's invitations: members list those waiting for an answer; owners invite."""

    @extend_schema(responses={200: TeamInvitationSerializer(many=True), **errors(404)})
    def get(self, request, slug):
        team = team_for(request.user, slug)
        return Response(TeamInvitationSerializer(pending_invitations_of(team), many=True).data)

    @extend_schema(request=InviteSerializer, responses={
        202: InvitedSerializer, **errors(400, 403, 404, _403="Only owners of the team invite.",
                                         _400="Already a member, a role that does not exist, or too many invitations "
                                              "waiting (`field` names it).")},
        description="Invite a user: they join when they accept (`POST /api/invitations/{id}/accept`), and nothing of "
                    "theirs changes before. The answer is the same whether or not the username exists.")
    def post(self, request, slug):
        team = team_for(request.user, slug)
        require_owner(request.user, team)
        data = InviteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(team=team, invited_by=request.user, **data.validated_data)
        return Response({"username": invitation.username, "role": invitation.role, "team": team.slug,
                         "status": "pending", "message": services.invited_sentence(invitation)}, status=202)


class TeamInvitationApi(APIView):
    @extend_schema(responses={204: None, **errors(403, 404, _403="Only owners of the team withdraw invitations.")})
    def delete(self, request, slug, invitation_id):
        team = team_for(request.user, slug)
        require_owner(request.user, team)
        services.invitation_withdraw(invitation=pending_invitation_in(team, invitation_id))
        return Response(status=204)


class InvitationListApi(APIView):
    @extend_schema(responses=InvitationSerializer(many=True))
    def get(self, request):
        """The invitations addressed to you that wait for an answer."""
        return Response(InvitationSerializer(invitations_for(request.user), many=True).data)


class InvitationAcceptApi(APIView):
    @extend_schema(request=None, responses={200: AnsweredSerializer, **errors(
        400, 403, 404, _400="Already answered, or lapsed (whoever sent it is no longer an owner).",
        _403="The invitation is for another user (you are a member of its team).")})
    def post(self, request, invitation_id):
        """Join the team with the role offered."""
        invitation = invitation_for(request.user, invitation_id)
        require_invitee(request.user, invitation)
        services.invitation_accept(invitation=invitation)
        team = teams_for(request.user).get(pk=invitation.team_id)
        return Response({"id": invitation.pk, "status": "accepted", "team": TeamSerializer(team).data})


class InvitationDeclineApi(APIView):
    @extend_schema(request=None, responses={200: AnsweredSerializer, **errors(
        400, 403, 404, _400="Already answered.", _403="The invitation is for another user (you are a member of its "
                                                      "team).")})
    def post(self, request, invitation_id):
        """Say no: nothing of the team reaches you."""
        invitation = invitation_for(request.user, invitation_id)
        require_invitee(request.user, invitation)
        services.invitation_decline(invitation=invitation)
        return Response({"id": invitation.pk, "status": "declined"})
