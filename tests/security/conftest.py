"""One team's worth of real objects, built once per module, and what the sweeps need around them.

`objects` is a team with an owner, an editor and a viewer, an outsider with a team of their own, and
one of every kind of object a URL can name: a ready dataset, an experiment, a run trained in-process
(with its checkpoint and evaluation), an LR range test, a weights file, a membership and an API token.
It is built inside a transaction that is rolled back after the module; each test runs in a savepoint
inside it (pytest-django), so a test that changes something changes it for itself only.
"""
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client, override_settings

from tests.support.factories import OPTIONS, PASSWORD, QUICK, light_and_dark_zip, sign_in, trained_run
from tests.support.services import wait_until

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Each object kwarg of the URL configuration, and the object of `objects` it names. A route with a
# kwarg missing here fails every sweep (test_idor.py::test_every_object_kwarg_has_an_object too).
OBJECT_KWARGS = {
    "slug": lambda o: o.team.slug,
    "membership_id": lambda o: o.membership.pk,   # the editor's membership of the team
    "token_id": lambda o: o.token.pk,             # the owner's API token
    "dataset_id": lambda o: o.dataset.pk,
    "index": lambda o: 0,                          # an image of the dataset
    "experiment_id": lambda o: o.experiment.pk,
    "run_id": lambda o: o.run.pk,                  # a finished run: checkpoint, evaluation, metrics
    "weights_id": lambda o: o.weights.pk,
    "sweep_id": lambda o: o.sweep.pk,              # a finished sweep whose one trial is the run
    "invitation_id": lambda o: pending_invitation(o).pk,
}


def pending_invitation(objects):
    """A pending invitation of the team, addressed to its owner: she may answer it, the viewer (a member
    who is not the one invited) gets 403, the outsider 404. Made on first use, inside the test."""
    from apps.teams.models import Invitation

    invitation, _ = Invitation.objects.get_or_create(
        team=objects.team, username=objects.owner.username, status=Invitation.Status.PENDING,
        defaults={"user": objects.owner, "role": "editor", "invited_by": objects.owner})
    return invitation


def kwarg_values(objects) -> dict:
    return {name: value(objects) for name, value in OBJECT_KWARGS.items()}


def build_world(tmp_path, *, classes=("dark", "light"), names=None, runs=1, first_image_name=None):
    """Users, teams and one object of each kind (`runs` trained runs); `names` overrides the names people
    see (keys: the usernames olivia, eddie, vera, oscar; team, dataset, experiment, weights, token)."""
    from django.contrib.auth import get_user_model

    from apps.datasets.models import Dataset
    from apps.datasets.ingest import dataset_ingest
    from apps.datasets.services import dataset_create
    from apps.experiments.models import LRFinding
    from apps.experiments.services import experiment_create
    from apps.runs.models import Run
    from apps.sweeps.models import Sweep
    from apps.weights.models import WeightsFile
    from apps.teams.models import Membership
    from apps.teams.services import team_create, token_create

    names = names or {}
    User = get_user_model()
    owner, editor, viewer, outsider = (User.objects.create_user(username=names.get(n, n), password=PASSWORD)
                                       for n in ("olivia", "eddie", "vera", "oscar"))
    team = team_create(name=names.get("team", "Vision Lab"), owner=owner)
    membership = Membership.objects.create(team=team, user=editor, role=Membership.Role.EDITOR)
    Membership.objects.create(team=team, user=viewer, role=Membership.Role.VIEWER)
    other_team = team_create(name="Other Lab", owner=outsider)

    dataset = dataset_create(team=team, user=editor, name=names.get("dataset", "Light and dark"), options=OPTIONS,
                             source_path=light_and_dark_zip(tmp_path / "classes.zip", classes=classes, per_class=20,
                                                            first_name=first_image_name))
    # In this process; where worker processes run (a committed world) one of them may claim it first.
    dataset_ingest(dataset_id=dataset.pk)
    wait_until(lambda: Dataset.objects.filter(pk=dataset.pk).exclude(status=Dataset.Status.INGESTING).exists(),
               timeout=120, message="the dataset to be ingested")
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.READY, dataset.error

    experiment = experiment_create(team=team, user=editor, name=names.get("experiment", "quick"),
                                   dataset=dataset, config=QUICK)
    runs = [trained_run(experiment, editor) for _ in range(runs)]
    run = runs[0]
    LRFinding.objects.create(experiment=experiment, team=team, created_by=editor, status=LRFinding.Status.SUCCEEDED,
                             lrs=[1e-5, 1e-4, 1e-3, 1e-2], losses=[0.7, 0.6, 0.4, 0.9], suggested_lr=1e-3)
    weights = WeightsFile.objects.create(team=team, created_by=editor, name=names.get("weights", "resnet18 weights"),
                                         arch="resnet18", path="weights/not-there.pth", format="pth", size=1,
                                         sha256="0" * 64, tensors=1)
    token, key = token_create(user=owner, name=names.get("token", "owner's script"))
    sweep = Sweep.objects.create(team=team, experiment=experiment, created_by=editor, name=names.get("sweep", "lr"),
                                 method="grid", parameters={"lr": {"values": [run.config["lr"]]}}, trials=1,
                                 status=Sweep.Status.SUCCEEDED)
    Run.objects.filter(pk=run.pk).update(sweep=sweep, trial_number=0, trial_params={"lr": run.config["lr"]})
    return SimpleNamespace(owner=owner, editor=editor, viewer=viewer, outsider=outsider, team=team,
                           other_team=other_team, membership=membership, dataset=dataset, experiment=experiment,
                           run=run, runs=runs, weights=weights, token=token, token_key=key, sweep=sweep,
                           password=PASSWORD)


@contextmanager
def world_for_the_module(django_db_blocker, tmp_path_factory, **options):
    """build_world in a data dir of its own, inside a transaction rolled back at the end."""
    data_dir = tmp_path_factory.mktemp("data")
    with override_settings(DATA_DIR=data_dir, PASSWORD_HASHERS=FAST_HASHER), django_db_blocker.unblock():
        with transaction.atomic():
            yield build_world(tmp_path_factory.mktemp("archives"), **options)
            transaction.set_rollback(True)


@pytest.fixture(scope="module")
def objects(django_db_setup, django_db_blocker, tmp_path_factory):
    with world_for_the_module(django_db_blocker, tmp_path_factory) as world:
        yield world


@pytest.fixture
def signed_in(objects):
    """A test client signed in as `user`, working in the objects' team when a member of it."""
    def signed_in(user, **client_options):
        return sign_in(Client(**client_options), user, objects.team)
    return signed_in


# Fields that change on every use without anyone acting: not part of "no state change".
VOLATILE_FIELDS = {"last_login", "last_used"}


def snapshot() -> dict:
    """Every row of the product's tables (and the users): equal before and after means nothing changed."""
    models = [apps.get_model("auth", "User")]
    for label in ("teams", "datasets", "weights", "experiments", "runs", "sweeps"):
        models += list(apps.get_app_config(label).get_models())
    state = {}
    for model in models:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in VOLATILE_FIELDS]
        state[model._meta.label] = list(model.objects.order_by("pk").values_list(*fields))
    return state


def send(client, method: str, url: str, data: dict | None = None, **extra):
    """One request with a body of the usual kind for the method (empty unless `data`)."""
    if method == "GET":
        return client.get(url, **extra)
    if method == "POST":
        return client.post(url, data or {}, **extra)
    return getattr(client, method.lower())(url, "{}", content_type="application/json", **extra)
