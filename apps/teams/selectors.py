"""Reads scoped to the user: the one place that decides which teams, and so which objects, a user sees.

Every later app scopes its querysets with `scoped(qs, user)`, so a cross-team id is simply not
found (404), exactly like an id that does not exist.
"""
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, QuerySet, Subquery, Sum
from django.http import Http404

from workers.engine import size_words

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
    teams = list(teams_for(user)[:2])
    if len(teams) == 1:
        return teams[0]
    personal = next((team for team in teams if team.personal), None)
    if personal is None:
        raise ValidationError("You are in several teams and have no personal one; name the team (its slug).",
                              code="team")
    return personal


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


@dataclass(frozen=True)
class Usage:
    """What a team's files take on the data disk, from the sizes its rows record (docs/RELIABILITY.md)."""

    datasets: int
    checkpoints: int
    weights: int
    quota: int

    @property
    def total(self) -> int:
        return self.datasets + self.checkpoints + self.weights

    @property
    def percent(self) -> float:
        return min(100.0, 100.0 * self.total / self.quota) if self.quota else 100.0

    def over_by(self, adding: int, *, already: int = 0) -> bool:
        """True when `adding` bytes more (in place of `already`, counted now) would pass the quota."""
        return self.total - already + adding > self.quota

    def refusal(self, adding: int, *, what: str, already: int = 0, change: str) -> str:
        """The sentence for `what` ("This upload would make a pack of") refused at `adding` bytes."""
        return (f"{what} about {size_words(adding)}; {self.summary(already=already)}; {change}, or ask an "
                "administrator to raise the quota.")

    def kinds(self) -> list[dict]:
        """For the team page's bar: each kind's bytes, in words, and its share of the quota in percent."""
        return [{"name": name, "bytes": n, "words": size_words(n),
                 "percent": round(min(100.0, 100.0 * n / self.quota), 2) if self.quota else 0.0}
                for name, n in (("datasets", self.datasets), ("checkpoints", self.checkpoints),
                                ("weights", self.weights))]

    def words(self) -> dict:
        return {"total": size_words(self.total), "quota": size_words(self.quota), "percent": round(self.percent, 1)}

    def summary(self, *, already: int = 0) -> str:
        return (f"the team uses {size_words(self.total - already)} of its {size_words(self.quota)} storage quota "
                "(DLSTUDIO_TEAM_QUOTA_GB)")


def team_usage(team: Team) -> Usage:
    """Three sums over the team's rows (datasets' `bytes`, runs' `checkpoint_bytes`, weights files' `size`),
    never a walk of the disk: cheap enough for every upload and every checkpoint."""
    def total(related, field):
        return getattr(team, related).aggregate(n=Sum(field))["n"] or 0
    return Usage(datasets=total("datasets", "bytes"), checkpoints=total("runs", "checkpoint_bytes"),
                 weights=total("weights_files", "size"), quota=settings.TEAM_QUOTA_GB * 10**9)
