"""Writes for teams, invitations, memberships and API tokens. Callers check permissions; these keep invariants."""
import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from .models import ApiToken, Invitation, Membership, Team
from .names import fold

TOKEN_PREFIX = "dls_"


def _unique_slug(base: str) -> str:
    base = slugify(base)[:40] or "team"
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _refuse_lookalike_name(name: str, owner) -> None:
    """Team names are unique per user as they read (names.fold): no second "bobs", nor a "bοbs"."""
    folded = fold(name)
    if not folded:
        raise ValidationError("A team needs a name.", code="name")
    for team in Team.objects.filter(memberships__user=owner).only("name"):
        if fold(team.name) == folded:
            raise ValidationError(f"You already have a team called “{team.name}”, and “{name}” reads the same in the "
                                  "team menu; choose a name that looks different.", code="name")


@transaction.atomic
def team_create(*, name: str, owner, slug: str | None = None, personal: bool = False) -> Team:
    _refuse_lookalike_name(name, owner)
    team = Team.objects.create(name=name, slug=slug or _unique_slug(name), personal=personal)
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


def personal_team_create(*, user) -> Team:
    return team_create(name=user.username, slug=_unique_slug(user.username), owner=user, personal=True)


# A cap on an owner's open offers, so that inviting cannot be used to fill the database.
MAX_PENDING_INVITATIONS = 100


@transaction.atomic
def invitation_create(*, team: Team, username: str, role: str, invited_by) -> Invitation:
    """Offer `role` in `team` to `username`; they become a member only when they accept.

    Whether the account exists changes nothing the owner sees: an invitation to a name nobody has is
    stored like any other and never reaches anyone. Inviting again while one is pending renews it.
    """
    username = username.strip()
    if not username:
        raise ValidationError("Give the username of the person to invite.", code="username")
    user = get_user_model().objects.filter(username=username).first()
    # Members are listed on the team page the owner is looking at: saying so tells nothing new.
    if user is not None and team.memberships.filter(user=user).exists():
        raise ValidationError(f"{user.username} is already a member of {team.name}.", code="username")
    same = Q(username=username) | Q(user=user) if user is not None else Q(username=username)
    pending = team.invitations.select_for_update().filter(same, status=Invitation.Status.PENDING).first()
    if pending is not None:
        pending.username, pending.user, pending.role, pending.invited_by = username, user, role, invited_by
        pending.save(update_fields=["username", "user", "role", "invited_by"])
        return pending
    if team.invitations.filter(status=Invitation.Status.PENDING).count() >= MAX_PENDING_INVITATIONS:
        raise ValidationError(f"{team.name} has {MAX_PENDING_INVITATIONS} invitations waiting for an answer, the "
                              "most it may have; withdraw some on the team page first.", code="username")
    return Invitation.objects.create(team=team, username=username, user=user, role=role, invited_by=invited_by)


def invited_sentence(invitation: Invitation) -> str:
    """What the owner is told: the same words whether or not the account exists."""
    return (f"Invited {invitation.username} as {invitation.get_role_display().lower()}. They join "
            f"{invitation.team.name} when they accept on their home page.")


def _answerable(invitation: Invitation) -> Invitation:
    """The invitation, locked, while it still waits for an answer."""
    invitation = Invitation.objects.select_for_update().select_related("team").get(pk=invitation.pk)
    if invitation.status != Invitation.Status.PENDING:
        raise ValidationError(f"This invitation was already {invitation.status}.")
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation) -> Membership:
    """The invited user joins the team with the role offered (a member already keeps theirs)."""
    invitation = _answerable(invitation)
    team = invitation.team
    # The offer stands only while whoever made it may still make it.
    if not team.memberships.filter(user_id=invitation.invited_by_id, role=Membership.Role.OWNER).exists():
        raise ValidationError(f"This invitation has lapsed: whoever sent it is no longer an owner of {team.name}. "
                              "Ask an owner to invite you again, or decline it.")
    membership, _ = Membership.objects.get_or_create(team=team, user=invitation.user,
                                                     defaults={"role": invitation.role})
    invitation.status, invitation.answered = Invitation.Status.ACCEPTED, timezone.now()
    invitation.save(update_fields=["status", "answered"])
    return membership


@transaction.atomic
def invitation_decline(*, invitation: Invitation) -> Invitation:
    """Nothing of the team reaches the invited user; the team's owners see the offer is gone."""
    invitation = _answerable(invitation)
    invitation.status, invitation.answered = Invitation.Status.DECLINED, timezone.now()
    invitation.save(update_fields=["status", "answered"])
    return invitation


def invitation_withdraw(*, invitation: Invitation) -> None:
    invitation.delete()


def _would_leave_no_owner(membership: Membership) -> bool:
    return (membership.role == Membership.Role.OWNER
            and not membership.team.memberships.filter(role=Membership.Role.OWNER)
            .exclude(pk=membership.pk).exists())


@transaction.atomic
def member_role_set(*, membership: Membership, role: str) -> Membership:
    if role != Membership.Role.OWNER and _would_leave_no_owner(membership):
        raise ValidationError("A team needs at least one owner; make someone else an owner first.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(*, membership: Membership) -> None:
    if _would_leave_no_owner(membership):
        raise ValidationError("A team needs at least one owner; make someone else an owner first.")
    membership.delete()


def token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new API token and its key; the key is returned once and never stored."""
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name.strip() or "API token",
                                    prefix=key[:len(TOKEN_PREFIX) + 4], digest=ApiToken.digest_of(key))
    return token, key


def token_revoke(*, token: ApiToken) -> None:
    token.delete()


@transaction.atomic
def user_upsert(*, username: str, password: str, team_slug: str, role: str | None = None):
    """Create the user (or set a new password), create the team if missing, set the membership.

    The first member of a team the command creates is its owner unless another role is asked for;
    an existing member keeps their role unless one is given. Returns (user, team, user_created).
    """
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    user.set_password(password)
    user.save()
    team = Team.objects.filter(slug=team_slug).first()
    if team is None:
        team = team_create(name=team_slug, slug=team_slug, owner=user)
    membership = team.memberships.filter(user=user).first()
    if membership is None:
        Membership.objects.create(team=team, user=user, role=role or Membership.Role.EDITOR)
    elif role and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return user, team, created
