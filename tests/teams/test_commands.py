import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db


def run(*args, **env):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_adduser_creates_user_team_and_membership():
    output = run("adduser", "ann", "--password", "pw-123-long", "--team", "lab")
    user = get_user_model().objects.get(username="ann")
    assert user.check_password("pw-123-long")
    assert Membership.objects.get(user=user, team__slug="lab").role == "owner"
    assert "Created user ann: owner of team lab" in output


def test_adduser_again_updates_password_and_role():
    run("adduser", "ann", "--password", "first-password", "--team", "lab")
    run("adduser", "bob", "--password", "bobs-password", "--team", "lab")
    assert Membership.objects.get(user__username="bob", team__slug="lab").role == "editor"
    run("adduser", "bob", "--password", "second-password", "--team", "lab", "--role", "viewer")
    bob = get_user_model().objects.get(username="bob")
    assert bob.check_password("second-password")
    assert Membership.objects.get(user=bob, team__slug="lab").role == "viewer"
    assert Team.objects.filter(slug="lab").count() == 1


def test_ensure_admin_creates_the_admin_once(settings):
    settings.ADMIN_PASSWORD = "from-the-environment"  # what DLSTUDIO_ADMIN_PASSWORD sets
    first = run("ensure_admin")
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("from-the-environment")
    assert "DLSTUDIO_ADMIN_PASSWORD" in first
    assert run("ensure_admin") == ""


def test_ensure_admin_prints_a_generated_password_once(settings):
    settings.ADMIN_PASSWORD = None
    output = run("ensure_admin")
    password = output.strip().rsplit(" ", 1)[-1]
    assert get_user_model().objects.get(username="admin").check_password(password)
