"""The IDOR sweep, generated from the URL configuration: every page and endpoint that names an object,
with every method its view declares, as an outsider (404), a viewer acting (403) and anonymous (401 or
the sign-in page). A new route is swept the day it is added; one whose object kwarg is unknown fails.
"""
import pytest
from django.test import Client

from tests.security.conftest import OBJECT_KWARGS, kwarg_values, send, snapshot
from tests.security.routes import ACTING, METHODS, PUBLIC, all_routes, object_routes, swept_routes

pytestmark = pytest.mark.django_db

OBJECT_ROUTES = object_routes()
ids = [r.name for r in OBJECT_ROUTES]

# What a viewer gets where it is not the usual (200 reading, 403 acting), and why.
VIEWER_EXPECTS = {
    # Predicting is reading: viewers may. No image was sent, so the answer is that 400.
    ("api_run_predict", "POST"): 400,
    # So are explaining an image and looking inside the network with it.
    ("api_run_explain", "POST"): 400,
    ("api_run_activations", "POST"): 400,
    # An API token belongs to a user, not to a team: the owner's token is not the viewer's to see.
    ("token_revoke", "POST"): 404,
}


def url_of(route, objects, **overrides):
    values = {**kwarg_values(objects), **overrides}
    missing = [k for k in route.kwargs if k not in OBJECT_KWARGS]
    assert not missing, f"{route.name}: no object for {missing}; add it to OBJECT_KWARGS in tests/security/conftest.py"
    return route.url(values)


def test_the_sweep_finds_every_kind_of_route():
    names = {r.name for r in swept_routes()}
    assert {"dataset_detail", "api_run_predict", "member_remove", "token_revoke", "api_weights_file",
            "api_lr_finder", "run_export_onnx"} <= names
    assert len(OBJECT_ROUTES) >= 30


def test_every_object_kwarg_has_an_object():
    unknown = {k: r.name for r in OBJECT_ROUTES for k in r.kwargs if k not in OBJECT_KWARGS}
    assert not unknown, f"routes name objects the sweep cannot build: {unknown}; extend OBJECT_KWARGS"


def test_every_route_has_a_name_and_declares_its_methods():
    for route in swept_routes():
        assert ":" in route.name or "/" not in route.name, f"{route.pattern} has no URL name"
        assert set(route.methods) != set(METHODS), (
            f"{route.name} answers every method; wrap it in require_safe, require_POST or require_http_methods")


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=ids)
def test_an_outsider_gets_404_for_every_method(route, objects, signed_in):
    client = signed_in(objects.outsider)
    url = url_of(route, objects)
    for method in METHODS:
        before = snapshot()
        response = send(client, method, url)
        expected = (404,) if method in route.methods else (404, 405)
        assert response.status_code in expected, (method, url, response.status_code)
        assert snapshot() == before, (method, url)
    if route.is_api:
        assert response.json() == {"error": "Not found."} or response.status_code == 405


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=ids)
def test_a_viewer_reads_but_acting_is_403(route, objects, signed_in):
    client = signed_in(objects.viewer)
    url = url_of(route, objects)
    for method in METHODS:
        before = snapshot()
        response = send(client, method, url)
        if method not in route.methods:
            assert response.status_code == 405, (method, url, response.status_code)
            continue
        expected = VIEWER_EXPECTS.get((route.name, method), 403 if method in ACTING else 200)
        assert response.status_code == expected, (method, url, response.status_code)
        if method in ACTING:
            assert snapshot() == before, (method, url)


@pytest.mark.parametrize("route", [r for r in swept_routes() if r.name not in PUBLIC], ids=lambda r: r.name)
def test_anonymous_gets_401_from_the_api_and_the_sign_in_page_elsewhere(route, objects):
    client = Client()
    url = url_of(route, objects)
    for method in METHODS:
        before = snapshot()
        response = send(client, method, url)
        if route.is_api:
            assert response.status_code == 401, (method, url, response.status_code)
            assert response.json()["error"] and response["WWW-Authenticate"].startswith("Token")
        else:
            assert response.status_code == 302 and response.url.startswith("/login/"), (method, url, response)
        assert snapshot() == before, (method, url)


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=ids)
def test_an_id_out_of_range_is_404_not_500(route, objects, signed_in):
    client = signed_in(objects.owner)
    huge = {k: 2**63 for k in route.kwargs if k.endswith("_id") or k == "index"}
    if not huge:
        huge = {"slug": "no-such-team"}
    url = url_of(route, objects, **huge)
    for method in route.methods:
        assert send(client, method, url).status_code == 404, (method, url)


def test_ids_in_query_strings_and_bodies_are_scoped_too(objects, signed_in, api_as):
    """Ids that are not in the path: the experiment form's clone links, compare, filters, bodies."""
    client = signed_in(objects.outsider)
    assert client.get(f"/experiments/new?from_experiment={objects.experiment.pk}").status_code == 404
    assert client.get(f"/experiments/new?from_run={objects.run.pk}").status_code == 404
    assert client.get("/experiments/new?from_run=abc").status_code == 404
    page = client.get(f"/runs/compare?ids={objects.run.pk},{objects.run.pk}", follow=True).content.decode()
    assert objects.experiment.name not in page and "Tick between 2 and 8 runs" in page
    api = api_as(objects.outsider)
    for query in (f"experiment={objects.experiment.pk}", f"dataset={objects.dataset.pk}"):
        assert api.get(f"/api/runs?{query}").json()["results"] == []
    assert api.get("/api/datasets").json()["results"] == []
    assert api.get("/api/weights").json()["results"] == []
    before = snapshot()
    answer = api.post("/api/experiments", {"name": "x", "dataset": objects.dataset.pk, "config": {}}, format="json")
    assert answer.status_code == 404
    own = api.post("/api/experiments", {"name": "x", "dataset": objects.dataset.pk, "weights_file": objects.weights.pk,
                                        "config": {"pretrained": "imagenet", "arch": "resnet18"}}, format="json")
    assert own.status_code == 404
    summary = api.post("/api/experiments/summary", {"dataset": objects.dataset.pk, "config": {}}, format="json")
    assert summary.status_code == 404 and summary.json() == {"error": "Not found."}
    assert snapshot() == before


def test_the_admin_turns_away_users_who_are_not_staff(objects, signed_in):
    admin_routes = [r for r in all_routes() if r.namespace == "admin"]
    assert admin_routes
    client = signed_in(objects.owner)
    for url in ("/admin/", "/admin/auth/user/", f"/admin/auth/user/{objects.outsider.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/admin/login/"), url


# Writes whose route names no object: they act in a team given in the body or chosen in the switcher.
NOT_TEAM_WRITES = {
    "team_create": "anyone may start a team of their own",
    "team_switch": "choosing among one's own teams (checked in tests/teams)",
    "token_create": "an API token belongs to its user, not to a team",
    "api_experiment_summary": "describes a config's network and writes nothing: viewers may ask, outsiders get 404 "
                              "(test_ids_in_query_strings_and_bodies_are_scoped_too)",
}
TEAM_WRITES = [r for r in swept_routes()
               if not r.kwargs and set(r.methods) & set(ACTING) and r.name not in {**PUBLIC, **NOT_TEAM_WRITES}]


def team_write_body(route, objects) -> dict:
    """The team named the way each route takes it: a slug, or an object of the team."""
    if route.name == "api_experiments":
        return {"name": "x", "dataset": objects.dataset.pk, "config": {}}
    if route.name == "api_sweeps":
        return {"name": "x", "experiment": objects.experiment.pk, "method": "grid",
                "parameters": {"lr": {"values": [0.01]}}}
    return {"team": objects.team.slug, "name": "x"}


def test_the_sweep_finds_the_team_writes():
    assert {"dataset_upload", "dataset_sample", "experiment_create", "weights_upload", "api_datasets",
            "api_weights", "api_experiments", "api_sweeps"} <= {r.name for r in TEAM_WRITES}


@pytest.mark.parametrize("route", TEAM_WRITES, ids=lambda r: r.name)
def test_a_viewer_cannot_create_in_the_team(route, objects, signed_in, api_as):
    client = api_as(objects.viewer) if route.is_api else signed_in(objects.viewer)
    for method in (m for m in route.methods if m in ACTING):
        before = snapshot()
        extra = {"format": "json"} if route.is_api else {}
        response = send(client, method, route.url({}), team_write_body(route, objects), **extra)
        assert response.status_code == 403, (method, route.name, response.status_code, response.content[:200])
        assert snapshot() == before
    if "GET" in route.methods and not route.is_api:  # the form itself says no too
        assert client.get(route.url({})).status_code == 403


@pytest.mark.parametrize("route", [r for r in TEAM_WRITES if r.is_api], ids=lambda r: r.name)
def test_an_outsider_cannot_create_in_the_team(route, objects, api_as):
    client = api_as(objects.outsider)
    for method in (m for m in route.methods if m in ACTING):
        before = snapshot()
        response = send(client, method, route.url({}), team_write_body(route, objects), format="json")
        assert response.status_code == 404, (method, route.name, response.status_code, response.content[:200])
        assert snapshot() == before
