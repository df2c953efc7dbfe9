import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_page_lists_every_endpoint_under_the_csp(page, live_server, sign_in, world):
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    sign_in(page, "vera", world.password)
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("dlstudio API")
    expect(page.locator(".opblock").first).to_be_visible()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/runs/{run_id}/predict" in paths and len(paths) >= 20, paths
    page.locator(".opblock-summary-path", has_text="/api/runs/{run_id}/cancel").click()
    expect(page.locator(".responses-table").first).to_contain_text("404")
    assert problems == []
