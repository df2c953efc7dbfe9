"""The run page's Speed fact: the latest epoch's images/s, with its peak GPU memory or "CPU"."""
import re

import pytest
from django.urls import reverse

from apps.runs.models import EpochMetric
from apps.runs.services import run_start
from tests.support.factories import sign_in

pytestmark = pytest.mark.django_db


def speed(client, world, run) -> str:
    page = sign_in(client, world.viewer, world.team).get(reverse("run_detail", args=[run.pk])).content.decode()
    return re.search(r'<dd id="run-speed">(.*?)</dd>', page).group(1)


def test_the_latest_epochs_speed_and_peak_gpu_memory(client, world, finished_run):
    latest = EpochMetric.objects.filter(run=finished_run).order_by("epoch").last()
    assert speed(client, world, finished_run) == f"{round(latest.images_per_s)} images/s · CPU"
    EpochMetric.objects.filter(pk=latest.pk).update(images_per_s=1520.4, gpu_memory_peak_mb=2048.4)
    assert speed(client, world, finished_run) == "1520 images/s · peak GPU memory 2048 MB"


def test_a_run_without_epochs_has_no_speed_yet(client, world, experiment):
    assert speed(client, world, run_start(experiment=experiment, user=world.editor)) == "—"
