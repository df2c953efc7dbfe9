"""Reads scoped to the user: the one place that decides which teams, and so which objects, a user sees.

Every later app scopes its querysets with `scoped(qs, user)`, so a cross-team id is simply not
found (404), exactly like an id that does not exist.
"""
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404

from .models import ApiToken, Membership, Team


def scoped(queryset: QuerySet, user, *, team_field: str = "team") -> QuerySet:
    """Restrict any queryset of team-owned objects to the teams `user` belongs to."""
    if not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{f"{team_field}__memberships__user": user})


def teams_for(user) -> QuerySet[Team]:
    """The user's teams, personal first, each annotated with the user's `role` in it."""
    if not user.is_authenticated:
        return Team.objects.none()
    role = Membership.objects.filter(team=OuterRef("pk"), user=user).values("role")[:1]
    return (Team.objects.filter(memberships__user=user)
            .annotate(role=Subquery(role)).order_by("-personal", "name"))


def team_for(user, slug: str) -> Team:
    """The user's team with this slug, or 404 when it does not exist or the user is not in it."""
    team = teams_for(user).filter(slug=slug).first()
    if team is None:
        raise Http404("No such team.")
    return team


def default_team(user, slug: str | None = None) -> Team:
    """The team an upload goes to: the named one (404 when not the user's), else the user's only team,
    else their personal one."""
    if slug:
        return team_for(user, slug)
    teams = list(teams_for(user)[:2])  # personal first
    if len(teams) == 1:
        return teams[0]
    if not teams:
        raise ValidationError("You are in no team yet; ask a team's owner to add you, then name the team (its "
                              "slug).", code="team")
    if not teams[0].personal:
        raise ValidationError("You are in several teams and have no personal one; name the team (its slug).",
                              code="team")
    return teams[0]


def team_with_slug(slug: str) -> Team | None:
    """For commands run by an administrator on the machine, who act without a user."""
    return Team.objects.filter(slug=slug).first()


def role_in(user, team: Team) -> str | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()


def memberships_of(team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("user__username")


def membership_in(team: Team, membership_id: int) -> Membership:
    membership = team.memberships.select_related("user").filter(pk=membership_id).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def tokens_for(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)
