"""API tokens and throttles: a revoked token is refused by every endpoint; sign-ins are throttled per
username and address (page, API, admin); API requests are throttled per user, in scopes that keep the
product's own polling and predicting clear of a script's budget; a 429 says when to come back."""
import time

import pytest
from django.test import Client

from apps.teams import login_throttle
from dlstudio import throttling
from dlstudio.rates import parse_rate
from tests.security.conftest import kwarg_values, send, snapshot
from tests.security.routes import PUBLIC, swept_routes

pytestmark = pytest.mark.django_db

API_ROUTES = [r for r in swept_routes() if r.is_api and r.name not in PUBLIC]


@pytest.fixture
def revoked_key(objects, signed_in):
    """A token of the owner, created and revoked on the profile page as a person would."""
    from apps.teams.models import ApiToken
    from apps.teams.services import token_create

    token, key = token_create(user=objects.owner, name="leaked")
    assert signed_in(objects.owner).post(f"/profile/tokens/{token.pk}/revoke").status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    return key


@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: r.name)
def test_a_revoked_token_is_refused_by_every_api_route(route, objects, revoked_key):
    client = Client(HTTP_AUTHORIZATION=f"Token {revoked_key}")
    url = route.url(kwarg_values(objects))
    for method in route.methods:
        before = snapshot()
        response = send(client, method, url)
        assert response.status_code == 401, (method, url, response.status_code)
        assert "revoked" in response.json()["error"] and response["WWW-Authenticate"].startswith("Token")
        assert snapshot() == before


def test_the_live_token_opens_the_same_routes(objects):
    """The other side of the sweep above: the owner's live token reads every object's endpoint."""
    client = Client(HTTP_AUTHORIZATION=f"Token {objects.token_key}")
    for route in API_ROUTES:
        if "GET" in route.methods:
            assert client.get(route.url(kwarg_values(objects))).status_code == 200, route.name


# --- signing in ------------------------------------------------------------------------------

def sign_in(client, username, password, address="10.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def get_token(client, username, password, address="10.0.0.1"):
    return client.post("/api/auth/token", {"username": username, "password": password},
                       content_type="application/json", REMOTE_ADDR=address)


def test_the_sign_in_page_refuses_after_five_failures_with_a_sentence_and_retry_after(objects, settings):
    client = Client()
    for _ in range(settings.LOGIN_FAILURES_ALLOWED):
        response = sign_in(client, "olivia", "wrong")
        assert response.status_code == 200 and b"didn't match" in response.content
    refused = sign_in(client, "olivia", objects.password)  # even the right password, now
    assert refused.status_code == 429 and "_auth_user_id" not in client.session
    assert b"Too many failed sign-ins" in refused.content
    assert 14 * 60 <= int(refused["Retry-After"]) <= 15 * 60
    # Another address, or another username from this one, is not affected.
    assert sign_in(Client(), "olivia", objects.password, address="10.0.0.2").status_code == 302
    assert sign_in(Client(), "vera", objects.password).status_code == 302


def test_the_token_endpoint_shares_the_count_and_answers_429_in_the_error_shape(objects, settings):
    client = Client()
    for _ in range(3):
        assert get_token(client, "olivia", "wrong").status_code == 400
    for _ in range(settings.LOGIN_FAILURES_ALLOWED - 3):
        assert sign_in(client, "olivia", "wrong").status_code == 200
    refused = get_token(client, "olivia", objects.password)
    assert refused.status_code == 429 and set(refused.json()) == {"error"}
    assert "Too many failed sign-ins" in refused.json()["error"] and int(refused["Retry-After"]) > 60


def test_the_admin_sign_in_counts_as_well(objects, settings):
    client = Client()
    for _ in range(settings.LOGIN_FAILURES_ALLOWED):
        client.post("/admin/login/", {"username": "olivia", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    assert sign_in(client, "olivia", objects.password).status_code == 429


def test_a_success_clears_the_count_and_the_window_ends(objects, settings, monkeypatch):
    client = Client()
    for _ in range(settings.LOGIN_FAILURES_ALLOWED - 1):
        sign_in(client, "olivia", "wrong")
    assert sign_in(Client(), "olivia", objects.password).status_code == 302
    for _ in range(settings.LOGIN_FAILURES_ALLOWED):
        assert sign_in(client, "olivia", "wrong").status_code == 200
    assert sign_in(client, "olivia", objects.password).status_code == 429
    later = time.time() + settings.LOGIN_FAILURE_WINDOW + 1
    monkeypatch.setattr(login_throttle, "clock", lambda: later)  # the window is over
    assert sign_in(client, "olivia", objects.password).status_code == 302


def test_a_forged_forwarded_for_header_does_not_escape_the_count(objects, settings):
    """Without DLSTUDIO_NUM_PROXIES the client's address is the socket's, whatever X-Forwarded-For says."""
    client = Client()
    for i in range(settings.LOGIN_FAILURES_ALLOWED):
        client.post("/login/", {"username": "olivia", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"10.1.0.{i}")
    refused = client.post("/login/", {"username": "olivia", "password": objects.password},
                          HTTP_X_FORWARDED_FOR="10.1.1.1")
    assert refused.status_code == 429


def test_spraying_many_usernames_from_one_address_is_refused_too(objects, settings):
    settings.LOGIN_FAILURES_ALLOWED = 2  # the address's limit is 10 times this
    client = Client()
    for i in range(20):
        assert get_token(client, f"user{i}", "guess").status_code == 400
    assert get_token(client, "someone-else", "guess").status_code == 429
    assert get_token(client, "olivia", objects.password, address="10.9.9.9").status_code == 201


def test_sign_in_still_works_when_the_cache_is_down(objects, settings):
    settings.CACHES = {**settings.CACHES, "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                                      "LOCATION": "redis://127.0.0.1:1/0",
                                                      "OPTIONS": {"socket_connect_timeout": 0.2}}}
    assert sign_in(Client(), "olivia", objects.password).status_code == 302
    assert get_token(Client(), "olivia", objects.password).status_code == 201


# --- API rates -------------------------------------------------------------------------------

@pytest.fixture
def low_rates(settings):
    def low_rates(**rates):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates}}
    return low_rates


def test_a_user_over_the_rate_gets_429_with_retry_after_and_others_do_not(objects, api_as, low_rates):
    low_rates(user="5/min")
    api = api_as(objects.viewer)
    for _ in range(5):
        assert api.get("/api/teams").status_code == 200
    refused = api.get(f"/api/experiments/{objects.experiment.pk}")
    assert refused.status_code == 429 and set(refused.json()) == {"error"}
    assert refused.json()["error"].startswith("Too many requests; try again in")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert api_as(objects.editor).get("/api/teams").status_code == 200
    # The pages' polling and predicting have budgets of their own.
    assert api.get(f"/api/runs/{objects.run.pk}/metrics").status_code == 200
    assert api.get(f"/api/datasets/{objects.dataset.pk}").status_code == 200
    assert api.post(f"/api/runs/{objects.run.pk}/predict", {}, format="multipart").status_code == 400


def test_polling_predicting_and_inspecting_are_throttled_in_their_own_scopes(objects, api_as, low_rates):
    low_rates(poll="3/min", predict="2/min", inspect="2/min")
    api = api_as(objects.viewer)
    statuses = [api.get(f"/api/runs/{objects.run.pk}/metrics").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    statuses = [api.post(f"/api/runs/{objects.run.pk}/predict", {}, format="multipart").status_code
                for _ in range(3)]
    assert statuses == [400, 400, 429]
    statuses = [api.post(f"/api/runs/{objects.run.pk}/explain", {}, format="multipart").status_code,
                api.get(f"/api/runs/{objects.run.pk}/model").status_code,
                api.post(f"/api/runs/{objects.run.pk}/activations", {}, format="multipart").status_code]
    assert statuses == [400, 200, 429]
    assert api.get("/api/teams").status_code == 200  # the general budget is untouched


def test_anonymous_requests_are_counted_per_address(low_rates):
    low_rates(anon="2/min")
    client = Client()
    assert [client.get("/api/health", REMOTE_ADDR="10.1.1.1").status_code in (200, 503) for _ in range(2)] == [True] * 2
    assert client.get("/api/health", REMOTE_ADDR="10.1.1.1").status_code == 429
    assert client.get("/api/health", REMOTE_ADDR="10.1.1.2").status_code in (200, 503)
    # A header the client writes itself changes nothing (no proxy is configured).
    forged = client.get("/api/health", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="10.7.7.7")
    assert forged.status_code == 429


def test_behind_a_proxy_the_address_it_appends_counts(low_rates, settings):
    low_rates(anon="1/min")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = Client()
    # The proxy appends the real client's address; whatever the client wrote before it is ignored.
    assert client.get("/api/health", HTTP_X_FORWARDED_FOR="1.1.1.1, 10.2.0.1").status_code in (200, 503)
    assert client.get("/api/health", HTTP_X_FORWARDED_FOR="2.2.2.2, 10.2.0.1").status_code == 429
    assert client.get("/api/health", HTTP_X_FORWARDED_FOR="1.1.1.1, 10.2.0.2").status_code in (200, 503)


def test_the_counts_live_in_redis_where_every_web_process_sees_them(objects, api_as, redis_server, monkeypatch):
    import redis

    # An earlier test in this process may have found no Redis and be counting locally for a while.
    monkeypatch.setattr(throttling, "_shared_down_until", 0.0)

    from dlstudio.settings import _cache_url

    shared = redis.Redis.from_url(_cache_url(redis_server.url))
    pattern = f"*throttle:user:user{objects.viewer.pk}:*"
    # Another test's user may have had the same id in this window (the database rolls back, Redis does not).
    for key in shared.keys(pattern):
        shared.delete(key)
    api = api_as(objects.viewer)
    assert api.get("/api/teams").status_code == 200
    assert len(shared.keys(pattern)) == 1


def test_when_redis_is_down_requests_are_counted_in_the_process(objects, api_as, low_rates, settings, monkeypatch):
    settings.CACHES = {**settings.CACHES, "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                                      "LOCATION": "redis://127.0.0.1:1/0",
                                                      "OPTIONS": {"socket_connect_timeout": 0.2}}}
    monkeypatch.setattr(throttling, "_shared_down_until", 0.0)
    low_rates(user="3/min")
    api = api_as(objects.viewer)
    assert [api.get("/api/teams").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert throttling._shared_down_until > time.monotonic()


def test_the_default_rates_leave_room_for_the_products_own_clients(settings):
    rates = {scope: parse_rate(rate) for scope, rate in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].items()}
    per_second = {scope: count / period for scope, (count, period) in rates.items()}
    assert per_second["predict"] >= 469          # bench/predict.py: 469 requests/s from one user
    assert per_second["poll"] >= 50 * 2          # 50 open run pages polling twice a second
    assert per_second["user"] >= 20              # a script listing and reading as fast as it can, near enough
    # A window of the predict rate holds a whole bench run (1,000 sequential + 10 s at 469/s).
    assert rates["predict"][0] >= 1000 + 4690


def test_a_burst_of_polling_with_the_default_rates_is_never_refused(objects, api_as):
    api = api_as(objects.viewer)
    assert all(api.get(f"/api/runs/{objects.run.pk}/metrics?after=2").status_code == 200 for _ in range(300))
