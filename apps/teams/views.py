import math

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from . import login_throttle, services
from .forms import MemberAddForm, MemberRoleForm, TeamCreateForm, TeamSwitchForm, TokenCreateForm
from .middleware import SESSION_KEY
from .models import Membership
from .permissions import has_role, require_invitee, require_owner
from .selectors import (
    invitation_for, membership_in, memberships_of, pending_invitation_in, pending_invitations_of, team_for, team_usage,
    tokens_for,
)


class LoginView(auth_views.LoginView):
    """Django's sign-in page; past the sign-in throttle (login_throttle.py) it says so, with a 429."""

    redirect_authenticated_user = True

    def form_invalid(self, form):
        wait = getattr(self.request, "login_refused_for", 0)
        if not wait:
            return super().form_invalid(form)
        response = self.render_to_response(self.get_context_data(form=form, refused=login_throttle.refusal(wait)),
                                           status=429)
        response["Retry-After"] = str(max(1, math.ceil(wait)))
        return response


def _safe_next(request, url: str) -> str | None:
    """`url` when it leads to a page of this site (a path, not //host or /\\host), else None."""
    if url and url.startswith("/") and url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return None


@login_required
@require_safe
def team_current(request):
    return redirect("team_detail", slug=request.team.slug)


@login_required
@require_safe
def team_detail(request, slug):
    team = team_for(request.user, slug)
    is_owner = has_role(team.role, Membership.Role.OWNER)
    return render(request, "teams/team_detail.html", {
        "team": team,
        "memberships": memberships_of(team),
        "is_owner": is_owner,
        "add_form": MemberAddForm() if is_owner else None,
        "roles": Membership.Role.choices,
        "invitations": pending_invitations_of(team),
        "usage": team_usage(team),
    })


@login_required
@require_POST
def team_create(request):
    form = TeamCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A team needs a name.")
        return redirect("team_current")
    try:
        team = services.team_create(name=form.cleaned_data["name"], owner=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("team_current")
    request.session[SESSION_KEY] = team.slug
    messages.success(request, f"Created {team.name}; you are its owner.")
    return redirect("team_detail", slug=team.slug)


@login_required
@require_POST
def member_add(request, slug):
    team = team_for(request.user, slug)
    require_owner(request.user, team)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(team=team, invited_by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
        else:
            # The same sentence whether or not the account exists (models.Invitation says why).
            messages.success(request, services.invited_sentence(invitation))
    else:
        messages.error(request, "Give a username and a role to invite a member.")
    return redirect("team_detail", slug=team.slug)


@login_required
@require_POST
def invitation_withdraw(request, slug, invitation_id):
    team = team_for(request.user, slug)
    require_owner(request.user, team)
    invitation = pending_invitation_in(team, invitation_id)
    services.invitation_withdraw(invitation=invitation)
    messages.success(request, f"Withdrew the invitation of {invitation.username}.")
    return redirect("team_detail", slug=team.slug)


@login_required
@require_POST
def invitation_accept(request, invitation_id):
    invitation = invitation_for(request.user, invitation_id)
    require_invitee(request.user, invitation)
    try:
        membership = services.invitation_accept(invitation=invitation)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"You joined {invitation.team.name} (owned by {invitation.owner_name}) as "
                                  f"{membership.get_role_display().lower()}; choose it in the team menu to work in it.")
    return redirect("home")


@login_required
@require_POST
def invitation_decline(request, invitation_id):
    invitation = invitation_for(request.user, invitation_id)
    require_invitee(request.user, invitation)
    try:
        services.invitation_decline(invitation=invitation)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.info(request, f"Declined the invitation to {invitation.team.name}.")
    return redirect("home")


@login_required
@require_POST
def member_role(request, slug, membership_id):
    team = team_for(request.user, slug)
    require_owner(request.user, team)
    membership = membership_in(team, membership_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, editor or viewer.")
        return redirect("team_detail", slug=team.slug)
    try:
        services.member_role_set(membership=membership, role=form.cleaned_data["role"])
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"{membership.user.username} is now {membership.get_role_display().lower()}.")
    return redirect("team_detail", slug=team.slug)


@login_required
@require_POST
def member_remove(request, slug, membership_id):
    team = team_for(request.user, slug)
    require_owner(request.user, team)
    membership = membership_in(team, membership_id)
    try:
        services.member_remove(membership=membership)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"Removed {membership.user.username} from {team.name}.")
    return redirect("team_detail", slug=team.slug)


@login_required
@require_POST
def team_switch(request):
    form = TeamSwitchForm(request.POST)
    if form.is_valid():
        team = team_for(request.user, form.cleaned_data["team"])
        request.session[SESSION_KEY] = team.slug
        messages.info(request, f"Now working in {team.name}.")
    return redirect(_safe_next(request, request.POST.get("next", "")) or "home")


@login_required
@require_safe
def profile(request):
    return render(request, "teams/profile.html", {
        "tokens": tokens_for(request.user),
        "form": TokenCreateForm(),
        "new_key": request.session.pop("new_token_key", None),
    })


@login_required
@require_POST
def token_create(request):
    form = TokenCreateForm(request.POST)
    name = form.cleaned_data["name"] if form.is_valid() else "API token"
    token, key = services.token_create(user=request.user, name=name)
    # Shown on the next page once (post/redirect/get), then gone: only the digest is stored.
    request.session["new_token_key"] = key
    messages.success(request, f"Created the token {token.name}. Copy it now: it will not be shown again.")
    return redirect("profile")


@login_required
@require_POST
def token_revoke(request, token_id):
    token = get_object_or_404(tokens_for(request.user), pk=token_id)
    services.token_revoke(token=token)
    messages.success(request, f"Revoked the token {token.name}; requests using it are now refused.")
    return redirect("profile")
