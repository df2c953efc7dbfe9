"""Security headers on every answer: each page and JSON endpoint of the URL configuration, error answers
(400, 401, 403, 404, 405, 413, 429, 500), files and static files; HSTS and the HTTPS redirect when
DLSTUDIO_HTTPS is on. `manage.py check --deploy` with production settings is
tests/test_settings.py::test_check_deploy_is_clean_with_production_settings; the settings it derives are
checked here."""
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.security.conftest import kwarg_values
from tests.security.routes import swept_routes
from tests.support.services import ROOT

pytestmark = pytest.mark.django_db

GET_ROUTES = [r for r in swept_routes() if "GET" in r.methods]


def assert_secure_headers(response, what):
    expected = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Content-Security-Policy": settings.CONTENT_SECURITY_POLICY,
    }
    for name, value in expected.items():
        assert response.get(name) == value, (what, response.status_code, name, response.get(name))


def test_the_policy_allows_scripts_from_this_site_only():
    policy = dict(part.split(" ", 1) for part in settings.CONTENT_SECURITY_POLICY.split("; "))
    assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'self'"
    assert "unsafe" not in policy["default-src"] + policy["script-src"] + policy["connect-src"]


@pytest.mark.parametrize("route", GET_ROUTES, ids=lambda r: r.name)
def test_every_page_and_endpoint_answers_with_the_headers(route, objects, signed_in):
    response = signed_in(objects.owner).get(route.url(kwarg_values(objects)))
    assert response.status_code in (200, 302, 503), response.status_code  # 503: health without workers
    assert_secure_headers(response, route.name)


def test_error_answers_carry_them_too(objects, signed_in, settings, monkeypatch):
    owner, viewer = signed_in(objects.owner), signed_in(objects.viewer)
    answers = {
        "404 page": owner.get("/no/such/page/"),
        "404 api": owner.get("/api/no/such/endpoint"),
        "401 api": Client().get("/api/teams"),
        "302 to sign in": Client().get("/datasets/"),
        "403 page": viewer.post(f"/datasets/{objects.dataset.pk}/delete"),
        "403 api": viewer.delete(f"/api/datasets/{objects.dataset.pk}"),
        "405": owner.post("/datasets/"),
        "400 api": owner.post("/api/datasets", {"archive": [SimpleUploadedFile(f"{i}", b"x") for i in range(101)]}),
        "400 page": owner.post("/datasets/upload", {"archive": [SimpleUploadedFile(f"{i}", b"x") for i in range(101)]}),
        "403 csrf": Client(enforce_csrf_checks=True).post("/login/", {"username": "x", "password": "y"}),
    }
    settings.MAX_UPLOAD_MB = 1
    answers["413 page"] = owner.post("/datasets/upload", {"archive": SimpleUploadedFile("a.zip", b"\0" * 2**21)})
    answers["413 api"] = owner.post("/api/datasets", {"archive": SimpleUploadedFile("a.zip", b"\0" * 2**21)})
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "1/min"}}
    owner.get("/api/teams")
    answers["429 api"] = owner.get("/api/teams")
    from apps.teams import views

    monkeypatch.setattr(views, "tokens_for", lambda user: 1 / 0)
    answers["500 page"] = signed_in(objects.owner, raise_request_exception=False).get("/profile/")
    expected_status = {name: int(name.split()[0]) for name in answers if name[0].isdigit()}
    for name, response in answers.items():
        assert response.status_code == expected_status.get(name, 302), (name, response.status_code)
        assert_secure_headers(response, name)
    for name in ("404 api", "401 api", "403 api", "400 api", "413 api", "429 api"):
        assert answers[name]["Content-Type"] == "application/json" and "error" in answers[name].json(), name


@pytest.mark.parametrize("path", ["/static/css/dlstudio.css", "/static/js/base.js", "/static/plotly/plotly.min.js",
                                  "/static/favicon.svg"])
def test_static_files_carry_them(path, client):
    response = client.get(path)
    assert response.status_code == 200
    assert_secure_headers(response, path)


def test_files_made_from_uploads_carry_them(objects, signed_in):
    client = signed_in(objects.viewer)
    for url in (f"/datasets/{objects.dataset.pk}/images/0.png", f"/datasets/{objects.dataset.pk}/mean.png",
                f"/runs/{objects.run.pk}/export/checkpoint", f"/runs/{objects.run.pk}/export/model-card"):
        assert_secure_headers(client.get(url), url)


def test_with_https_every_answer_has_hsts_and_plain_http_is_redirected(objects, signed_in, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = settings.SECURE_HSTS_PRELOAD = True
    client = signed_in(objects.owner)
    for url in ("/", "/api/teams", "/no/such/page/", "/api/no/such", "/static/js/base.js",
                f"/datasets/{objects.dataset.pk}/mean.png"):
        response = client.get(url, secure=True)
        assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload", url
        assert_secure_headers(response, url)
        plain = client.get(url)
        assert plain.status_code == 301 and plain.url == f"https://testserver{url}", url


def production_settings(**env) -> dict:
    script = ("import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k) for k in "
              "['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', "
              "'SECURE_PROXY_SSL_HEADER', 'SESSION_COOKIE_HTTPONLY', 'DEBUG', 'CONTENT_SECURITY_POLICY', "
              "'MIDDLEWARE']}))")
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    result = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", script], cwd=ROOT,
                            env={**inherited, "DJANGO_SETTINGS_MODULE": "dlstudio.settings", **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dlstudio_https_turns_on_secure_cookies_hsts_and_the_redirect(tmp_path):
    values = production_settings(DLSTUDIO_DATA_DIR=str(tmp_path), DLSTUDIO_HTTPS="true")
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"] and values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_HSTS_SECONDS"] >= 31536000 and values["SECURE_PROXY_SSL_HEADER"]
    assert values["SESSION_COOKIE_HTTPONLY"] and not values["DEBUG"]
    # The headers middleware is outermost: answers made by any other middleware get the headers too.
    assert values["MIDDLEWARE"][0] == "dlstudio.middleware.SecurityHeadersMiddleware"
