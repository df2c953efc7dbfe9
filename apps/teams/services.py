"""Writes for teams, memberships and API tokens. Callers check permissions; these keep invariants."""
import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from .models import ApiToken, Membership, Team

TOKEN_PREFIX = "dls_"


def _unique_slug(base: str) -> str:
    base = slugify(base)[:40] or "team"
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def team_create(*, name: str, owner, slug: str | None = None, personal: bool = False) -> Team:
    team = Team.objects.create(name=name, slug=slug or _unique_slug(name), personal=personal)
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


def personal_team_create(*, user) -> Team:
    return team_create(name=user.username, slug=_unique_slug(user.username), owner=user, personal=True)


def member_add(*, team: Team, username: str, role: str) -> Membership:
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise ValidationError(f"There is no user called {username.strip()!r}; they need an account first.",
                              code="username")
    if team.memberships.filter(user=user).exists():
        raise ValidationError(f"{user.username} is already a member of {team.name}.", code="username")
    return Membership.objects.create(team=team, user=user, role=role)


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
