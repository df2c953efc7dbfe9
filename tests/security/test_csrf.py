"""CSRF on every form and every session-authenticated write, found in the URL configuration: without the
token a signed-in owner's request is refused (403) and changes nothing; with it the same request gets
through. A request authenticated by an API token needs no CSRF token (DRF's rule: a header a foreign
site cannot set)."""
import pytest

from tests.security.conftest import kwarg_values, send, snapshot
from tests.security.routes import ACTING, swept_routes

pytestmark = pytest.mark.django_db

# Writes that CSRF does not apply to, and why.
NO_CSRF = {
    "api_token": "authenticates with the username and password in its body, never with the session cookie",
    "api_health": "GET only, no authentication",
}
WRITE_ROUTES = [r for r in swept_routes() if set(r.methods) & set(ACTING) and r.name not in NO_CSRF]


def test_the_sweep_finds_the_forms():
    names = {r.name for r in WRITE_ROUTES}
    assert {"login", "logout", "team_switch", "member_remove", "token_create", "dataset_upload", "dataset_delete",
            "experiment_create", "run_annotate", "weights_upload", "api_datasets", "api_run", "api_run_predict",
            "api_lr_finder"} <= names


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=lambda r: r.name)
def test_a_write_without_the_csrf_token_is_refused_and_changes_nothing(route, objects, signed_in):
    client = signed_in(objects.owner, enforce_csrf_checks=True)
    url = route.url(kwarg_values(objects))
    for method in ACTING:
        before = snapshot()
        response = send(client, method, url)
        assert response.status_code == 403, (method, url, response.status_code)
        if route.is_api:
            assert "CSRF" in response.json()["error"]
        assert snapshot() == before, (method, url)


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=lambda r: r.name)
def test_the_same_write_with_the_token_gets_past_the_check(route, objects, signed_in):
    client = signed_in(objects.owner, enforce_csrf_checks=True)
    client.get("/profile/")
    token = client.cookies["csrftoken"].value
    url = route.url(kwarg_values(objects))
    for method in (m for m in route.methods if m in ACTING):
        if method == "POST":
            response = client.post(url, {"csrfmiddlewaretoken": token}, HTTP_X_CSRFTOKEN=token)
        else:
            response = send(client, method, url, HTTP_X_CSRFTOKEN=token)
        assert response.status_code != 403, (method, url, response.content[:300])


def test_the_sign_in_form_needs_the_token_too(objects):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": objects.owner.username, "password": objects.password})
    assert response.status_code == 403 and "_auth_user_id" not in client.session
    assert b"security token" in response.content  # templates/403_csrf.html, not Django's debug text


def test_a_token_authenticated_write_needs_no_csrf_token(objects):
    from django.test import Client

    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {objects.token_key}")
    response = client.patch(f"/api/runs/{objects.run.pk}", {"notes": "from a script"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["notes"] == "from a script"
    assert client.post(f"/api/runs/{objects.run.pk}/cancel").status_code == 202


def test_a_session_with_a_foreign_origin_is_refused_even_with_the_token(objects, signed_in):
    """Django's origin check: a form posted from another site over HTTPS fails however it got a token."""
    client = signed_in(objects.owner, enforce_csrf_checks=True)
    client.get("/profile/")
    token = client.cookies["csrftoken"].value
    before = snapshot()
    response = client.post(f"/runs/{objects.run.pk}/annotate", {"csrfmiddlewaretoken": token, "notes": "x"},
                           HTTP_ORIGIN="https://evil.example", secure=True, HTTP_HOST="localhost")
    assert response.status_code == 403 and snapshot() == before
