import pytest
from playwright.sync_api import expect

from apps.teams.models import ApiToken

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_see_the_workers_and_create_an_api_token(page, live_server, sign_in, world, celery_workers):
    sign_in(page, "olivia", world.password)
    expect(page.locator("h1")).to_contain_text("Welcome, olivia")
    # The worker announces itself a moment after it starts: reload until it is listed (bounded).
    for _ in range(60):
        if page.locator("#workers table").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator("#workers")).to_contain_text(celery_workers.train.name)
    expect(page.locator("#workers")).to_contain_text("train")

    page.click("a.username")
    page.fill("#id_name", "my laptop")
    page.click("text=Create token")
    key = page.locator("#new-token-key").inner_text()
    assert key.startswith("dls_")
    token = ApiToken.objects.get(user=world.owner, name="my laptop")
    assert token.digest == ApiToken.digest_of(key)
    expect(page.locator("#tokens")).to_contain_text("my laptop")


def test_wrong_password_shows_an_error(page, live_server, world):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "olivia")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".msg-error")).to_contain_text("didn't match")
