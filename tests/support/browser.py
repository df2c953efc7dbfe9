"""Chromium through Playwright, for tests/browser and tests/security: one browser for the whole session
(a second sync_playwright() in the same thread would fail), loaded as a plugin by tests/conftest.py."""
import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("DLSTUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in the test thread; Django's ORM must still work there.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    # What users see: kept for a look after the run (and for a failing test's post-mortem).
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def sign_in(live_server):
    def sign_in(page, username, password):
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page
    return sign_in


def switch_team(page, slug):
    """Choose a team in the header's switcher and wait for the page it submits to (static/js/base.js)."""
    with page.expect_navigation():
        page.select_option("#team-switch", slug)
    return page
