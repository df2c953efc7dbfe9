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


def test_a_failed_runs_traceback_is_for_editors_and_names_no_server_folder(world, finished_run, api_as, client):
    import sysconfig

    from django.conf import settings

    from apps.runs.models import Run

    site = sysconfig.get_paths()["purelib"]
    trace = ("Traceback (most recent call last):\n"
             f'  File "{settings.BASE_DIR}/apps/runs/training.py", line 150, in run_train\n'
             f'  File "{site}/torch/nn/modules/module.py", line 1773, in _wrapped_call_impl\n'
             f'  File "/home/someone/elsewhere/thing.py", line 3, in f\n'
             "RuntimeError: out of memory\n")
    Run.objects.filter(pk=finished_run.pk).update(status="failed", error="It ran out of memory.", traceback=trace)

    shown = api_as(world.editor).get(f"/api/runs/{finished_run.pk}").json()["traceback"]
    assert 'File "apps/runs/training.py"' in shown and 'File "site-packages/torch/nn/modules/module.py"' in shown
    assert 'File "thing.py"' in shown and "RuntimeError: out of memory" in shown
    assert str(settings.BASE_DIR) not in shown and site not in shown and "/home/" not in shown
    assert api_as(world.viewer).get(f"/api/runs/{finished_run.pk}").json()["traceback"] == ""

    client.force_login(world.viewer)
    page = client.get(f"/runs/{finished_run.pk}/").content.decode()
    assert "It ran out of memory." in page and "run-traceback" not in page and "module.py" not in page
    client.force_login(world.editor)
    assert 'File &quot;apps/runs/training.py&quot;' in client.get(f"/runs/{finished_run.pk}/").content.decode()


def test_the_weights_cache_is_shown_below_home_not_as_the_servers_account(world, client, monkeypatch, tmp_path):
    from pathlib import Path

    monkeypatch.setenv("HOME", str(tmp_path / "serviceaccount"))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    client.force_login(world.viewer)
    page = client.get("/weights/").content.decode()
    assert "~/.cache/torch/hub/checkpoints" in page and str(Path.home()) not in page


def test_api_answers_are_private_and_vary_by_account(world, api_as, client, finished_run):
    for response in (api_as(world.viewer).get(f"/api/runs/{finished_run.pk}"), api_as(world.viewer).get("/api/runs"),
                     api_as(world.outsider).get(f"/api/runs/{finished_run.pk}"), api_as(None).get("/api/teams")):
        assert response["Cache-Control"] == "private, no-store", response.status_code
        assert {"Authorization", "Cookie"} <= {v.strip() for v in response["Vary"].split(",")}
    client.force_login(world.viewer)
    response = client.get(f"/api/runs/{finished_run.pk}")
    assert response["Cache-Control"] == "private, no-store" and "Cookie" in response["Vary"]
