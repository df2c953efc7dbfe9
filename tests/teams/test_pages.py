import pytest
from django.urls import reverse

from apps.teams.models import ApiToken, Invitation, Membership
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db


def test_every_new_user_gets_a_personal_team(make_user):
    user = make_user("newbie")
    membership = Membership.objects.get(user=user, team__personal=True)
    assert membership.role == Membership.Role.OWNER


def test_pages_redirect_anonymous_users_to_login(client, world):
    for url in [reverse("home"), reverse("team_current"), reverse("team_detail", args=[world.team.slug]),
                reverse("profile")]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), url


@pytest.mark.parametrize("who", ["owner", "editor", "viewer"])
def test_members_see_the_team_page(client, world, who):
    response = sign_in(client, getattr(world, who), world.team).get(reverse("team_detail", args=[world.team.slug]))
    assert response.status_code == 200
    assert b"olivia" in response.content and b"vera" in response.content
    # Only owners get the forms that manage members.
    assert (b"Invite a member" in response.content) == (who == "owner")


def test_outsider_gets_404_for_a_team_they_are_not_in(client, world):
    response = sign_in(client, world.outsider, world.team).get(reverse("team_detail", args=[world.team.slug]))
    assert response.status_code == 404


def test_owner_invites_then_changes_and_removes_a_member(client, world, make_user):
    from django.test import Client

    newcomer = make_user("nina")
    c = sign_in(client, world.owner, world.team)
    c.post(reverse("member_add", args=[world.team.slug]), {"username": "nina", "role": "viewer"})
    assert not Membership.objects.filter(team=world.team, user=newcomer).exists()  # invited, not added
    invitation = Invitation.objects.get(team=world.team, user=newcomer, status="pending")
    sign_in(Client(), newcomer).post(reverse("invitation_accept", args=[invitation.pk]))
    membership = Membership.objects.get(team=world.team, user=newcomer)
    assert membership.role == "viewer"
    c.post(reverse("member_role", args=[world.team.slug, membership.pk]), {"role": "editor"})
    membership.refresh_from_db()
    assert membership.role == "editor"
    c.post(reverse("member_remove", args=[world.team.slug, membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_the_last_owner_cannot_leave_or_be_demoted(client, world):
    c = sign_in(client, world.owner, world.team)
    mine = Membership.objects.get(team=world.team, user=world.owner)
    response = c.post(reverse("member_role", args=[world.team.slug, mine.pk]), {"role": "viewer"}, follow=True)
    assert b"at least one owner" in response.content
    c.post(reverse("member_remove", args=[world.team.slug, mine.pk]))
    mine.refresh_from_db()
    assert mine.role == "owner"


@pytest.mark.parametrize("who", ["editor", "viewer"])
def test_non_owners_cannot_manage_members(client, world, who, make_user):
    make_user("nina")
    c = sign_in(client, getattr(world, who), world.team)
    target = Membership.objects.get(team=world.team, user=world.viewer)
    add = c.post(reverse("member_add", args=[world.team.slug]), {"username": "nina", "role": "owner"})
    assert add.status_code == 403
    assert c.post(reverse("member_role", args=[world.team.slug, target.pk]), {"role": "owner"}).status_code == 403
    assert c.post(reverse("member_remove", args=[world.team.slug, target.pk])).status_code == 403
    assert world.team.memberships.count() == 3 and not Invitation.objects.exists()
    target.refresh_from_db()
    assert target.role == "viewer"


def test_outsider_cannot_manage_members_of_another_team(client, world, make_user):
    make_user("nina")
    c = sign_in(client, world.outsider, world.team)
    target = Membership.objects.get(team=world.team, user=world.viewer)
    add = c.post(reverse("member_add", args=[world.team.slug]), {"username": "nina", "role": "owner"})
    assert add.status_code == 404
    assert c.post(reverse("member_role", args=[world.team.slug, target.pk]), {"role": "owner"}).status_code == 404
    assert c.post(reverse("member_remove", args=[world.team.slug, target.pk])).status_code == 404


def test_membership_ids_of_another_team_are_404(client, world):
    foreign = Membership.objects.get(team=world.other_team, user=world.outsider)
    c = sign_in(client, world.owner, world.team)
    assert c.post(reverse("member_remove", args=[world.team.slug, foreign.pk])).status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()


def test_switching_team_changes_the_current_team(client, world):
    c = sign_in(client, world.viewer, world.team)
    c.post(reverse("team_switch"), {"team": world.team.slug, "next": "/"})
    assert c.get(reverse("team_current")).url == reverse("team_detail", args=[world.team.slug])


def test_switching_to_a_foreign_team_is_404(client, world):
    c = sign_in(client, world.viewer, world.team)
    assert c.post(reverse("team_switch"), {"team": world.other_team.slug}).status_code == 404


def test_switch_does_not_redirect_off_site(client, world):
    c = sign_in(client, world.viewer, world.team)
    response = c.post(reverse("team_switch"), {"team": world.team.slug, "next": "//evil.example/"})
    assert response.url == reverse("home")


def test_create_team_makes_the_creator_owner(client, world):
    c = sign_in(client, world.viewer, world.team)
    c.post(reverse("team_create"), {"name": "Robotics"})
    assert Membership.objects.get(team__name="Robotics", user=world.viewer).role == "owner"


def test_tokens_are_created_shown_once_and_revoked(client, world):
    c = sign_in(client, world.editor, world.team)
    c.post(reverse("token_create"), {"name": "laptop"})
    page = c.get(reverse("profile")).content.decode()
    token = ApiToken.objects.get(user=world.editor, name="laptop")
    key = page.split('id="new-token-key">')[1].split("<")[0]
    assert ApiToken.digest_of(key) == token.digest
    assert key not in c.get(reverse("profile")).content.decode()  # shown once only
    assert f'href="{reverse("api_docs")}"' in page  # and where the API it opens is described
    c.post(reverse("token_revoke", args=[token.pk]))
    assert not ApiToken.objects.filter(pk=token.pk).exists()


def test_another_users_token_cannot_be_revoked(client, world):
    from apps.teams.services import token_create

    token, _ = token_create(user=world.owner, name="mine")
    c = sign_in(client, world.outsider, world.team)
    assert c.post(reverse("token_revoke", args=[token.pk])).status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_forms_require_csrf(world):
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    c.login(username=world.owner.username, password=world.password)
    assert c.post(reverse("token_create"), {"name": "x"}).status_code == 403
    assert not ApiToken.objects.filter(user=world.owner).exists()


def test_home_shows_the_nav_and_the_team_switcher(client, world):
    page = sign_in(client, world.viewer, world.team).get(reverse("home")).content.decode()
    assert 'id="team-switch"' in page and "Vision Lab" in page
    assert "Workers" in page
