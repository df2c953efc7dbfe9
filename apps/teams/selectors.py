"""Reads scoped to the user: the one place that decides which teams, and so which objects, a user sees.

Every later app scopes its querysets with `scoped(qs, user)`, so a cross-team id is simply not
found (404), exactly like an id that does not exist.
"""
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.http import Http404

from workers.engine import size_words

from .models import ApiToken, Invitation, Membership, Team
from .names import fold


def scoped(queryset: QuerySet, user, *, team_field: str = "team") -> QuerySet:
    """Restrict any queryset of team-owned objects to the teams `user` belongs to."""
    if not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{f"{team_field}__memberships__user": user})


def teams_for(user) -> QuerySet[Team]:
    """The user's teams, personal first, each annotated with the user's `role` in it and its `owner_name`."""
    if not user.is_authenticated:
        return Team.objects.none()
    role = Membership.objects.filter(team=OuterRef("pk"), user=user).values("role")[:1]
    return (Team.objects.filter(memberships__user=user)
            .annotate(role=Subquery(role), owner_name=_first_owner_name())
            .order_by("-personal", "name"))


def _first_owner_name(team_ref: str = "pk"):
    """The username of a team's longest-standing owner: who the team menu names beside the team, so
    that two teams called alike are told apart by whose they are."""
    owners = (Membership.objects.filter(team=OuterRef(team_ref), role=Membership.Role.OWNER)
              .order_by("created", "pk").values("user__username")[:1])
    return Subquery(owners)


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


# --- invitations ---------------------------------------------------------------------------

def _invitations_with_team():
    return (Invitation.objects.select_related("team", "invited_by")
            .annotate(owner_name=_first_owner_name("team")))


def invitations_for(user) -> list[Invitation]:
    """The pending invitations addressed to `user`, newest first. Each carries `owner_name` and
    `looks_like`: the name of one of the user's own teams that reads the same, else None."""
    if not user.is_authenticated:
        return []
    invitations = list(_invitations_with_team().filter(user=user, status=Invitation.Status.PENDING))
    if invitations:
        mine = {fold(team.name): team.name for team in teams_for(user)}
        for invitation in invitations:
            invitation.looks_like = mine.get(fold(invitation.team.name))
    return invitations


def invitation_for(user, invitation_id: int) -> Invitation:
    """An invitation the user may see: one addressed to them, or one of a team they are in (whose
    members see its pending invitations). Anyone else gets 404, as if it did not exist."""
    if not user.is_authenticated:
        raise Http404("Not found.")
    invitation = (_invitations_with_team().filter(pk=invitation_id)
                  .filter(Q(user=user) | Q(team__memberships__user=user)).distinct().first())
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def pending_invitations_of(team: Team) -> QuerySet[Invitation]:
    return team.invitations.filter(status=Invitation.Status.PENDING).select_related("invited_by")


def pending_invitation_in(team: Team, invitation_id: int) -> Invitation:
    invitation = pending_invitations_of(team).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


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
