"""Small limits on what anyone may send (docs/RELIABILITY.md, "Resource limits"): JSON depth, a user
without a personal team."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from dlstudio import bounded_json

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000


def test_deeply_nested_json_is_a_400_without_signing_in(api_as):
    response = api_as(None).post("/api/auth/token", DEEP, content_type="application/json")
    assert response.status_code == 400 and "nested deeper than 32 levels" in response.json()["error"]


def test_json_just_past_the_depth_limit_is_refused_and_within_it_parsed(world, api_as):
    api = api_as(world.owner)
    deep = {"name": "x", "dataset": 1, "config": json.loads("[" * 33 + "]" * 33)}
    response = api.post("/api/experiments", deep, format="json")
    assert response.status_code == 400 and "nested deeper" in response.json()["error"]
    assert bounded_json.loads("[" * 32 + "]" * 32) is not None


def test_nested_json_in_a_form_field_and_a_weights_header_is_a_sentence(world, api_as, dataset):
    api = api_as(world.owner)
    response = api.post(f"/api/datasets/{dataset.pk}/versions", {"exclude": "[" * 3000 + "]" * 3000},
                        format="multipart")
    assert response.status_code == 400 and "nested deeper" in response.json()["error"]
    header = ("{" + '"a":{' * 3000 + "}" * 3001).encode()
    safetensors = len(header).to_bytes(8, "little") + header
    response = api.post("/api/weights", {"file": SimpleUploadedFile("deep.safetensors", safetensors),
                                         "arch": "resnet18", "team": world.team.slug}, format="multipart")
    assert response.status_code == 400 and "damaged safetensors header" in response.json()["error"]


@pytest.mark.parametrize("teams", [0, 2], ids=["no team", "two teams, no personal one"])
def test_an_upload_without_a_team_by_someone_without_a_personal_team_is_a_400(make_user, api_as, teams):
    from apps.teams.models import Membership, Team
    from apps.teams.services import team_create

    user = make_user("nomad")
    Team.objects.filter(memberships__user=user, personal=True).delete()
    owner = make_user("host")
    for i in range(teams):
        Membership.objects.create(team=team_create(name=f"t{i}", owner=owner), user=user,
                                  role=Membership.Role.EDITOR)
    api = api_as(user)
    for path, field in (("/api/datasets", "archive"), ("/api/weights", "file")):
        response = api.post(path, {field: SimpleUploadedFile("a.zip", b"PK\x05\x06" + b"\0" * 18)},
                            format="multipart")
        assert response.status_code == 400, (path, response.content)
        assert "name the team" in response.json()["error"] and response.json()["field"] == "team"
