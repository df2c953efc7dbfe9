from django.contrib.auth import views as auth_views
from django.urls import path

from . import api, views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("team/", views.team_current, name="team_current"),
    path("teams/new", views.team_create, name="team_create"),
    path("teams/switch", views.team_switch, name="team_switch"),
    path("teams/<slug:slug>/", views.team_detail, name="team_detail"),
    path("teams/<slug:slug>/members/add", views.member_add, name="member_add"),
    path("teams/<slug:slug>/invitations/<int:invitation_id>/withdraw", views.invitation_withdraw,
         name="invitation_withdraw"),
    path("invitations/<int:invitation_id>/accept", views.invitation_accept, name="invitation_accept"),
    path("invitations/<int:invitation_id>/decline", views.invitation_decline, name="invitation_decline"),
    path("teams/<slug:slug>/members/<int:membership_id>/role", views.member_role, name="member_role"),
    path("teams/<slug:slug>/members/<int:membership_id>/remove", views.member_remove, name="member_remove"),
    path("profile/", views.profile, name="profile"),
    path("profile/tokens/new", views.token_create, name="token_create"),
    path("profile/tokens/<int:token_id>/revoke", views.token_revoke, name="token_revoke"),
    path("api/auth/token", api.TokenObtainApi.as_view(), name="api_token"),
    path("api/teams", api.TeamListApi.as_view(), name="api_teams"),
    path("api/teams/<slug:slug>/invitations", api.TeamInvitationsApi.as_view(), name="api_team_invitations"),
    path("api/teams/<slug:slug>/invitations/<int:invitation_id>", api.TeamInvitationApi.as_view(),
         name="api_team_invitation"),
    path("api/invitations", api.InvitationListApi.as_view(), name="api_invitations"),
    path("api/invitations/<int:invitation_id>/accept", api.InvitationAcceptApi.as_view(), name="api_invitation_accept"),
    path("api/invitations/<int:invitation_id>/decline", api.InvitationDeclineApi.as_view(),
         name="api_invitation_decline"),
]
