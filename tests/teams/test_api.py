import pytest
from rest_framework.test import APIClient

from apps.teams.services import token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def test_token_from_username_and_password(api, world):
    response = api.post("/api/auth/token", {"username": "vera", "password": world.password}, format="json")
    assert response.status_code == 201
    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert api.get("/api/teams").status_code == 200


def test_wrong_password_is_a_400_with_a_sentence(api, world):
    response = api.post("/api/auth/token", {"username": "vera", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": "The username or password is wrong."}


def test_missing_field_names_the_field(api, world):
    response = api.post("/api/auth/token", {"username": "vera"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "password"
    assert response.json()["error"]


def test_no_credentials_is_401_with_the_error_shape(api):
    response = api.get("/api/teams")
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert response["WWW-Authenticate"].startswith("Token")


def test_a_revoked_or_unknown_token_is_401(api, world):
    token, key = token_create(user=world.viewer, name="x")
    token.delete()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = api.get("/api/teams")
    assert response.status_code == 401 and "revoked" in response.json()["error"]


def test_teams_lists_only_the_callers_teams_with_roles(api, world):
    _, key = token_create(user=world.viewer, name="x")
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    teams = {t["slug"]: t for t in api.get("/api/teams").json()}
    assert teams[world.team.slug]["role"] == "viewer"
    assert world.other_team.slug not in teams
    assert any(t["role"] == "owner" and t["name"] == "vera" for t in teams.values())  # personal team


def test_session_authentication_works_for_the_api(client, world):
    client.login(username="olivia", password=world.password)
    assert client.get("/api/teams").status_code == 200


def test_unknown_api_url_is_a_json_404(api):
    response = api.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}


def test_health_needs_no_credentials_and_reports_database_and_broker(api, redis_server):
    body = api.get("/api/health").json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "ok"
    assert isinstance(body["workers"], list)
