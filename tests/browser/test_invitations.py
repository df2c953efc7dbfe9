"""The invitation flow in Chromium: an owner invites from the team page, the invitee sees the invitation
on their home page and accepts (the team appears in their menu with its owner) or declines (nothing
changes)."""
import pytest
from playwright.sync_api import expect

from apps.teams import services
from apps.teams.models import Invitation, Membership
from tests.support.browser import SCREENSHOTS, switch_team

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"invitations-{name}.png"), full_page=True)


def switcher_options(page) -> list[str]:
    return [text.strip() for text in page.locator("#team-switch option").all_inner_texts()]


def test_owner_invites_the_invitee_accepts_and_the_team_shows_its_owner(
        page, browser, live_server, sign_in, world, make_user):
    make_user("nina")
    sign_in(page, "olivia", world.password)
    page.goto(f"{live_server.url}/teams/{world.team.slug}/")
    page.fill("#id_username", "nina")
    page.select_option("#id_role", "editor")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(page.locator(".msg-success")).to_contain_text("Invited nina as editor")
    expect(page.locator("#pending-invitations")).to_contain_text("nina")
    shot(page, "1-owner-invited")
    assert not Membership.objects.filter(team=world.team, user__username="nina").exists()

    invitee = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    sign_in(invitee, "nina", world.password)
    assert not any("Vision Lab" in option for option in switcher_options(invitee))
    card = invitee.locator("#invitations")
    expect(card).to_contain_text("olivia invites you to Vision Lab (owned by olivia) as editor")
    shot(invitee, "2-invitee-home")
    card.get_by_role("button", name="Accept").click()
    expect(invitee.locator(".msg-success")).to_contain_text("You joined Vision Lab (owned by olivia) as editor")
    expect(invitee.locator("#invitations")).to_have_count(0)
    assert "Vision Lab · owned by olivia · editor" in switcher_options(invitee)
    assert Membership.objects.get(team=world.team, user__username="nina").role == "editor"
    switch_team(invitee, world.team.slug)
    expect(invitee.locator("#team-switch option:checked")).to_have_text("Vision Lab · owned by olivia · editor")
    shot(invitee, "3-invitee-working-in-the-team")
    invitee.context.close()


def test_a_lookalike_team_is_flagged_and_declining_changes_nothing(page, live_server, sign_in, world, make_user):
    bob, mallory = make_user("bob"), make_user("mallory")
    services.team_create(name="bobs", owner=bob)
    team = services.team_create(name="bοbs", owner=mallory)  # a Greek omicron
    services.invitation_create(team=team, username="bob", role="owner", invited_by=mallory)
    sign_in(page, "bob", world.password)
    before = switcher_options(page)
    card = page.locator("#invitations")
    expect(card).to_contain_text("mallory invites you to bοbs (owned by mallory) as owner")
    expect(card.locator(".lookalike")).to_contain_text("reads like your team “bobs”")
    shot(page, "4-lookalike-warning")
    card.get_by_role("button", name="Decline").click()
    expect(page.locator(".msg-info")).to_contain_text("Declined the invitation to bοbs")
    assert switcher_options(page) == before
    assert Invitation.objects.get(team=team).status == "declined"
    assert not Membership.objects.filter(team=team, user=bob).exists()
