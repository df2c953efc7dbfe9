"""Role checks in one place: viewers read, editors and owners act, owners manage the team."""
from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Membership
from .selectors import role_in

RANK = {Membership.Role.VIEWER: 0, Membership.Role.EDITOR: 1, Membership.Role.OWNER: 2}
WHAT_NEEDS = {
    Membership.Role.EDITOR: "only editors and owners of this team can do this",
    Membership.Role.OWNER: "only owners of this team can do this",
}


def has_role(role: str | None, minimum: str) -> bool:
    return role is not None and RANK[role] >= RANK[minimum]


def require_role(user, team, minimum: str) -> str:
    """The user's role in `team`; 404 when not a member (as if the team did not exist), 403 when too low."""
    role = role_in(user, team)
    if role is None:
        raise Http404("Not found.")
    if not has_role(role, minimum):
        raise PermissionDenied(f"You are a {role} of {team.name}; {WHAT_NEEDS[minimum]}.")
    return role


def can_edit(user, team) -> bool:
    """Whether `user` may create and act in `team` (editors and owners; viewers only read)."""
    return has_role(role_in(user, team), Membership.Role.EDITOR)


def require_editor(user, team) -> str:
    return require_role(user, team, Membership.Role.EDITOR)


def require_owner(user, team) -> str:
    return require_role(user, team, Membership.Role.OWNER)


def require_invitee(user, invitation) -> None:
    """Only the person invited answers an invitation. Members of its team see it (invitation_for), so
    to them this is a 403; to anyone else it was already a 404."""
    if invitation.user_id is None or invitation.user_id != user.pk:
        raise PermissionDenied("This invitation is for someone else; only they can accept or decline it.")
