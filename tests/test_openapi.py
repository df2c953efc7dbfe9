"""The OpenAPI schema (GET /api/schema/) describes every endpoint of the URL configuration, with its
answers and its errors, and validates; /api/docs/ renders it from this site's own files."""
import re

import pytest
from django.test import Client

from tests.security.routes import all_routes
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db

# Pages that are themselves the schema, and so not in it.
NOT_DESCRIBED = {"api_schema", "api_docs"}


@pytest.fixture
def schema(world):
    response = sign_in(Client(), world.viewer).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content
    return response.json()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def test_every_api_route_and_method_is_described(schema):
    described = {(re.sub(r"\{\w+\}", "{}", path), method) for path, method, _ in operations(schema)}
    for route in all_routes():
        if not route.is_api or route.name in NOT_DESCRIBED:
            continue
        path = "/" + re.sub(r"<(?:\w+:)?\w+>", "{}", route.pattern)
        for method in route.methods:
            assert (path, method) in described, (route.name, method)


def test_every_operation_says_what_it_answers_and_its_errors(schema):
    for path, method, operation in operations(schema):
        codes = set(operation["responses"])
        assert codes & {"200", "201", "202", "204"}, (path, method)
        assert "429" in codes, (path, method)
        if path not in ("/api/health", "/api/auth/token"):
            assert "401" in codes, (path, method)
        if "{" in path:
            assert "404" in codes, (path, method)
        if method != "GET" and path != "/api/auth/token":
            assert codes & {"400", "403"}, (path, method)
        for code, answer in operation["responses"].items():
            if code.startswith(("4", "5")) and code != "503":
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_the_schema_validates():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_the_schema_and_its_page_are_for_signed_in_users(world):
    anonymous = Client()
    for url in ("/api/schema/", "/api/docs/"):
        response = anonymous.get(url)
        assert response.status_code == 401 and response.json()["error"].startswith("Sign in"), url
    page = sign_in(Client(), world.viewer).get("/api/docs/")
    assert page.status_code == 200 and b"swagger-ui" in page.content
    # Swagger UI from this site's static files, its start-up script apart: no CDN, no inline script.
    assert b"https://" not in page.content and b"<script>" not in page.content
    script = sign_in(Client(), world.viewer).get("/api/docs/?script=")
    assert script.status_code == 200 and b"/api/schema/" in script.content
