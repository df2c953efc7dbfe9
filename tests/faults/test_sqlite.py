"""One SQLite file written at once by two training workers and by the web: nobody sees "database is
locked", and no epoch is lost."""
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.runs.models import EpochMetric, Run
from apps.teams.models import Membership
from tests.support.factories import sign_in

from .conftest import fresh, start, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EPOCHS = 15
CONFIG = {"epochs": EPOCHS, "batch_size": 8, "hidden_units": [16], "seed": 1}
CLIENTS = 4


def test_two_workers_and_four_web_clients_write_at_once(world, dataset, stack, api_as, make_user):
    stack.start_redis()
    first_trainer, second_trainer = stack.start_trainer(wait=False), stack.start_trainer(wait=False)
    stack.wait_ready()
    runs = [start(world, dataset, CONFIG, name="first"), start(world, dataset, CONFIG, name="second")]
    for run in runs:
        wait_for(run, lambda r: r.status == "running", timeout=60, message="both runs to start")

    # Each client is its own team editor (the API's per-user throttle is not what is tested here).
    editors = [make_user(f"editor{i}") for i in range(CLIENTS)]
    for user in editors:
        Membership.objects.create(team=world.team, user=user, role=Membership.Role.EDITOR)
    failures, answers, done = [], [], threading.Event()

    def hammer(i, user):
        api, page = api_as(user), sign_in(Client(), user, world.team)
        count, after = 0, {run.pk: 0 for run in runs}
        try:
            while not done.is_set():
                run = runs[count % 2]
                count += 1
                metrics = api.get(reverse("api_run_metrics", args=[run.pk]), {"after": after[run.pk]})
                calls = [
                    ("GET metrics", metrics),
                    ("GET run", api.get(reverse("api_run", args=[run.pk]))),
                    ("PATCH notes", api.patch(reverse("api_run", args=[run.pk]),
                                              {"notes": f"client {i}, call {count}", "tags": [f"c{i}"]},
                                              format="json")),
                    ("GET page", page.get(reverse("run_detail", args=[run.pk]))),
                    ("POST annotate", page.post(reverse("run_annotate", args=[run.pk]),
                                                {"notes": f"form of client {i}, call {count}", "tags": "form"})),
                ]
                for name, answer in calls:
                    answers.append(answer.status_code)
                    if not 200 <= answer.status_code < 400:
                        failures.append((name, answer.status_code, answer.content[:300]))
                if metrics.status_code == 200 and metrics.json()["epochs"]:
                    after[run.pk] = metrics.json()["epochs"][-1]["epoch"]
        except Exception as exc:  # "database is locked" raised inside the test client lands here
            failures.append(("exception", type(exc).__name__, str(exc)[:300]))
        finally:
            connection.close()

    threads = [threading.Thread(target=hammer, args=(i, user)) for i, user in enumerate(editors)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        for run in runs:
            wait_for(run, lambda r: r.status in Run.FINISHED_STATUSES, timeout=180,
                     message=lambda: "both runs to finish under load\n" + stack.logs())
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
    seconds = time.monotonic() - started

    assert not failures, failures[:5]
    assert len(answers) >= 5 * CLIENTS, answers  # every client got through at least one round
    for run in runs:
        run = fresh(run)
        assert run.status == "succeeded" and run.attempt == 1, run.error  # no heartbeat went stale either
        epochs = list(EpochMetric.objects.filter(run=run).order_by("epoch").values_list("epoch", flat=True))
        assert epochs == list(range(1, EPOCHS + 1))
    assert {fresh(run).worker for run in runs} == {first_trainer.name, second_trainer.name}
    print(f"{len(answers)} web answers in {seconds:.1f} s while two workers trained")
