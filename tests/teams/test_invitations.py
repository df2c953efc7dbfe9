"""Teams by consent: an owner's "add" is an invitation the person accepts or declines; until then
nothing of theirs changes; the owner hears the same answer whether or not the username exists; team
names that read alike are refused for one owner and told apart by their owner in the team menu."""
import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.teams import services
from apps.teams.models import Invitation, Membership, Team
from apps.teams.names import fold
from apps.teams.selectors import default_team
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db


def invite(client, team, username, role="viewer", **extra):
    return client.post(reverse("member_add", args=[team.slug]), {"username": username, "role": role}, **extra)


def api_client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def what_they_see(user) -> dict:
    """Everything of the user's that an invitation must not change before they accept."""
    client = sign_in(Client(), user)
    home = client.get(reverse("home")).content.decode()
    switcher = home.split('id="team-switch"')[1].split("</select>")[0]
    return {"teams": client.get("/api/teams").json(), "switcher": switcher,
            "default": default_team(user).slug, "memberships": list(user.memberships.values_list("team", "role"))}


# --- inviting --------------------------------------------------------------------------------

def test_adding_someone_creates_a_pending_invitation_and_no_membership(client, world, make_user):
    nina = make_user("nina")
    response = invite(sign_in(client, world.owner, world.team), world.team, "nina", follow=True)
    assert "Invited nina as viewer" in response.content.decode()
    invitation = Invitation.objects.get(team=world.team, username="nina")
    assert (invitation.user, invitation.role, invitation.status, invitation.invited_by) == (
        nina, "viewer", "pending", world.owner)
    assert not Membership.objects.filter(team=world.team, user=nina).exists()


def test_the_invitees_teams_switcher_and_default_team_are_unchanged_until_they_accept(client, world, make_user):
    bob = make_user("bob")
    before = what_they_see(bob)
    mallory = make_user("mallory")
    mallory_team = services.team_create(name="Bob's lab", owner=mallory)
    invite(sign_in(client, mallory, mallory_team), mallory_team, "bob", role="owner")
    assert Invitation.objects.filter(user=bob, status="pending").exists()
    assert what_they_see(bob) == before


def test_accepting_makes_a_membership_with_the_role_offered(client, world, make_user):
    nina = make_user("nina")
    invite(sign_in(client, world.owner, world.team), world.team, "nina", role="editor")
    invitation = Invitation.objects.get(user=nina)
    invitee = sign_in(Client(), nina)
    home = invitee.get(reverse("home")).content.decode()
    assert 'id="invitations"' in home and "Vision Lab" in home and "owned by olivia" in home
    invitee.post(reverse("invitation_accept", args=[invitation.pk]))
    assert Membership.objects.get(team=world.team, user=nina).role == "editor"
    invitation.refresh_from_db()
    assert invitation.status == "accepted" and invitation.answered is not None
    assert 'id="invitations"' not in invitee.get(reverse("home")).content.decode()


def test_declining_leaves_nothing(client, world, make_user):
    nina = make_user("nina")
    before = what_they_see(nina)
    invite(sign_in(client, world.owner, world.team), world.team, "nina", role="owner")
    invitation = Invitation.objects.get(user=nina)
    sign_in(Client(), nina).post(reverse("invitation_decline", args=[invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.status == "declined"
    assert not Membership.objects.filter(team=world.team, user=nina).exists()
    assert what_they_see(nina) == before
    # The team page no longer lists it as waiting; and a declined invitation cannot be accepted after.
    page = sign_in(Client(), world.owner).get(reverse("team_detail", args=[world.team.slug])).content.decode()
    assert 'id="pending-invitations"' not in page
    answer = api_client(nina).post(f"/api/invitations/{invitation.pk}/accept")
    assert answer.status_code == 400 and "already declined" in answer.json()["error"]
    assert not Membership.objects.filter(team=world.team, user=nina).exists()


def test_an_unknown_username_gets_exactly_the_answer_a_known_one_gets(client, world, make_user):
    """The same request, once before the account "nina" exists and once after: the same status, the same
    redirect and sentence on the page, the same JSON body from the API."""
    owner = sign_in(client, world.owner, world.team)
    api = api_client(world.owner)
    url = f"/api/teams/{world.team.slug}/invitations"

    def answers():
        page = invite(owner, world.team, "nina")
        followed = owner.get(page.url).content.decode()
        sentence = followed.split('class="msg msg-success">')[1].split("<")[0]
        body = api.post(url, {"username": "nina", "role": "viewer"}, format="json")
        listed = api.get(url).json()
        Invitation.objects.filter(team=world.team).delete()  # withdraw, for the second round
        return (page.status_code, page.url, sentence, body.status_code, body.content,
                [(i["username"], i["role"]) for i in listed])

    unknown = answers()
    make_user("nina")
    known = answers()
    assert unknown == known
    assert unknown[3] == 202 and b'"status":"pending"' in unknown[4]
    # The invitation to nobody reaches nobody: "nina", created later, has nothing waiting.
    invite(owner, world.team, "ghost")
    ghost = make_user("ghost")
    assert api_client(ghost).get("/api/invitations").json() == []


def test_inviting_a_member_says_they_are_one(client, world):
    response = invite(sign_in(client, world.owner, world.team), world.team, "vera", follow=True)
    assert "vera is already a member of Vision Lab" in response.content.decode()
    assert not Invitation.objects.exists()


def test_inviting_again_renews_the_pending_invitation(client, world, make_user):
    make_user("nina")
    owner = sign_in(client, world.owner, world.team)
    invite(owner, world.team, "nina", role="viewer")
    invite(owner, world.team, "nina", role="editor")
    assert list(Invitation.objects.values_list("role", "status")) == [("editor", "pending")]


def test_pending_invitations_are_capped_per_team(world, monkeypatch):
    monkeypatch.setattr(services, "MAX_PENDING_INVITATIONS", 2)
    for name in ("a", "b"):
        services.invitation_create(team=world.team, username=name, role="viewer", invited_by=world.owner)
    with pytest.raises(ValidationError, match="2 invitations waiting"):
        services.invitation_create(team=world.team, username="c", role="viewer", invited_by=world.owner)


# --- answering -------------------------------------------------------------------------------

def test_the_api_lists_accepts_and_declines(world, make_user):
    nina = make_user("nina")
    api = api_client(world.owner)
    assert api.post(f"/api/teams/{world.team.slug}/invitations", {"username": "nina", "role": "editor"},
                    format="json").status_code == 202
    mine = api_client(nina).get("/api/invitations").json()
    assert len(mine) == 1 and mine[0]["team"] == {"slug": world.team.slug, "name": "Vision Lab", "owner": "olivia"}
    assert mine[0]["role"] == "editor" and mine[0]["invited_by"] == "olivia" and mine[0]["looks_like"] is None
    accepted = api_client(nina).post(f"/api/invitations/{mine[0]['id']}/accept")
    assert accepted.status_code == 200
    assert accepted.json()["team"] == {"slug": world.team.slug, "name": "Vision Lab", "role": "editor",
                                       "owner": "olivia"}
    assert api_client(nina).get("/api/invitations").json() == []

    other = services.team_create(name="Second", owner=world.owner)
    services.invitation_create(team=other, username="nina", role="viewer", invited_by=world.owner)
    pending = api_client(nina).get("/api/invitations").json()[0]
    declined = api_client(nina).post(f"/api/invitations/{pending['id']}/decline")
    assert declined.status_code == 200 and declined.json() == {"id": pending["id"], "status": "declined"}
    assert not Membership.objects.filter(team=other, user=nina).exists()


def test_only_the_invited_user_answers_members_get_403_others_404(world, make_user):
    nina = make_user("nina")
    invitation = services.invitation_create(team=world.team, username="nina", role="owner", invited_by=world.owner)
    for who in (world.owner, world.viewer):  # members of the team see it, and may not answer it
        for action in ("accept", "decline"):
            assert api_client(who).post(f"/api/invitations/{invitation.pk}/{action}").status_code == 403
    for action in ("accept", "decline"):
        answer = api_client(world.outsider).post(f"/api/invitations/{invitation.pk}/{action}")
        assert answer.status_code == 404 and answer.json() == {"error": "Not found."}
        page = sign_in(Client(), world.outsider).post(reverse(f"invitation_{action}", args=[invitation.pk]))
        assert page.status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == "pending" and not Membership.objects.filter(user=nina, team=world.team).exists()


def test_an_invitation_lapses_when_whoever_sent_it_is_no_longer_an_owner(world, make_user):
    nina = make_user("nina")
    invitation = services.invitation_create(team=world.team, username="nina", role="owner", invited_by=world.editor)
    answer = api_client(nina).post(f"/api/invitations/{invitation.pk}/accept")
    assert answer.status_code == 400 and "no longer an owner" in answer.json()["error"]
    assert not Membership.objects.filter(user=nina, team=world.team).exists()


def test_owners_withdraw_an_invitation_viewers_cannot(world, make_user):
    make_user("nina")
    invitation = services.invitation_create(team=world.team, username="nina", role="viewer", invited_by=world.owner)
    url = f"/api/teams/{world.team.slug}/invitations/{invitation.pk}"
    assert api_client(world.viewer).get(f"/api/teams/{world.team.slug}/invitations").json()[0]["username"] == "nina"
    assert api_client(world.viewer).delete(url).status_code == 403
    assert api_client(world.outsider).delete(url).status_code == 404
    assert api_client(world.owner).delete(url).status_code == 204
    assert not Invitation.objects.exists()


# --- names that read alike -------------------------------------------------------------------

@pytest.mark.parametrize("lookalike", ["bοbs", "BOBS", "ВОВЅ", " bobs ", "b\u200bobs", "ｂｏｂｓ", "bobѕ"])
def test_a_name_that_reads_like_one_of_the_owners_teams_is_refused(world, make_user, lookalike):
    bob = make_user("bob")
    services.team_create(name="bobs", owner=bob)
    with pytest.raises(ValidationError, match="reads the same"):
        services.team_create(name=lookalike, owner=bob)
    assert Team.objects.filter(memberships__user=bob).count() == 2  # personal "bob" and "bobs"
    assert fold(lookalike) == "bobs"


def test_the_page_refuses_a_greek_omicron_lookalike_with_a_sentence(client, world):
    c = sign_in(client, world.viewer, world.team)
    c.post(reverse("team_create"), {"name": "bobs"})
    response = c.post(reverse("team_create"), {"name": "bοbs"}, follow=True)
    assert "You already have a team called “bobs”" in response.content.decode()
    assert list(Team.objects.filter(memberships__user=world.viewer, name__startswith="b").values_list(
        "name", flat=True)) == ["bobs"]


def test_another_owner_may_use_the_name(world, make_user):
    services.team_create(name="bobs", owner=make_user("bob"))
    assert services.team_create(name="bοbs", owner=make_user("mallory")).name == "bοbs"


def test_the_switcher_shows_the_owner_beside_the_name(client, world, make_user):
    bob, mallory = make_user("bob"), make_user("mallory")
    services.team_create(name="bobs", owner=bob)
    team = services.team_create(name="bοbs", owner=mallory)  # a Greek omicron: allowed, it is mallory's
    invitation = services.invitation_create(team=team, username="bob", role="owner", invited_by=mallory)
    # Before accepting, the home page warns that the name reads like bob's own team.
    home = sign_in(Client(), bob).get(reverse("home")).content.decode()
    assert "reads like your team “bobs”" in home and "owned by mallory" in home
    services.invitation_accept(invitation=invitation)
    home = sign_in(client, bob).get(reverse("home")).content.decode()
    switcher = home.split('id="team-switch"')[1].split("</select>")[0]
    assert ">bob (personal) · owner<" in switcher and ">bobs · owner<" in switcher
    assert ">bοbs · owned by mallory · owner<" in switcher
    teams = {t["slug"]: t for t in api_client(bob).get("/api/teams").json()}
    assert teams[team.slug]["owner"] == "mallory"
