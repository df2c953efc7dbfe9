"""A run's best weights scored on another version of its dataset (`POST /api/runs/<id>/evaluate`)."""
import numpy as np
import pytest

from apps.datasets.ingest import dataset_ingest
from apps.datasets.services import dataset_version_create
from apps.runs.evaluating import in_class_order, version_evaluation_run
from apps.runs.models import VersionEvaluation
from tests.support.factories import make_experiment, ready_dataset, trained_run
from workers.engine.ingest.pack import Pack

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(world, tmp_path):
    dataset = ready_dataset(world.team, tmp_path / "ld.zip", per_class=30)
    return trained_run(make_experiment(world.team, world.owner, dataset), world.owner)


def version_of(dataset, user, **changes):
    version = dataset_version_create(parent=dataset, user=user, **changes)
    dataset_ingest(dataset_id=version.pk)
    version.refresh_from_db()
    assert version.status == "ready", version.error
    return version


def test_a_run_is_scored_on_a_relabelled_version_and_lists_the_report(world, api_as, trained):
    version = version_of(trained.dataset, world.owner, relabel={"0": "light", "1": "light"}, exclude=[2])
    client = api_as(world.editor)
    response = client.post(f"/api/runs/{trained.pk}/evaluate", {"dataset": version.pk}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "queued" and response.json()["dataset_version"] == 2
    assert version_evaluation_run(evaluation_id=response.json()["id"], worker="w@test") == "succeeded"
    body = api_as(world.viewer).get(f"/api/runs/{trained.pk}").json()
    [evaluation] = body["evaluations"]
    assert evaluation["status"] == "succeeded" and evaluation["dataset"] == version.pk
    assert evaluation["dataset_hash"] == version.content_hash and 0 <= evaluation["accuracy"] <= 1
    assert evaluation["classes"] == ["dark", "light"]
    assert sum(map(sum, evaluation["confusion"])) == sum(c.test for c in version.classes.all())


def test_a_version_with_other_classes_is_a_400_naming_them(world, api_as, trained):
    version = version_of(trained.dataset, world.owner, relabel={"0": "grey", "1": "grey"})
    response = api_as(world.editor).post(f"/api/runs/{trained.pk}/evaluate", {"dataset": version.pk}, format="json")
    assert response.status_code == 400 and "adds 'grey'" in response.json()["error"]
    assert not VersionEvaluation.objects.exists()


def test_asking_twice_while_it_waits_is_refused_and_after_it_ends_scores_again(world, api_as, trained):
    version = version_of(trained.dataset, world.owner, exclude=[0])
    client = api_as(world.editor)
    first = client.post(f"/api/runs/{trained.pk}/evaluate", {"dataset": version.pk}, format="json")
    assert client.post(f"/api/runs/{trained.pk}/evaluate", {"dataset": version.pk}, format="json").status_code == 400
    version_evaluation_run(evaluation_id=first.json()["id"], worker="w@test")
    again = client.post(f"/api/runs/{trained.pk}/evaluate", {"dataset": version.pk}, format="json")
    assert again.status_code == 202 and VersionEvaluation.objects.count() == 1


def test_viewers_cannot_ask_and_outsiders_see_neither_run_nor_dataset(world, api_as, trained):
    body = {"dataset": trained.dataset_id}
    assert api_as(world.viewer).post(f"/api/runs/{trained.pk}/evaluate", body, format="json").status_code == 403
    assert api_as(world.outsider).post(f"/api/runs/{trained.pk}/evaluate", body, format="json").status_code == 404


def test_a_dataset_of_another_team_is_a_404(world, api_as, trained, tmp_path):
    theirs = ready_dataset(world.other_team, tmp_path / "theirs.zip", per_class=30)
    response = api_as(world.editor).post(f"/api/runs/{trained.pk}/evaluate", {"dataset": theirs.pk}, format="json")
    assert response.status_code == 404


def test_labels_are_renumbered_to_the_order_the_weights_know():
    pack = Pack(path=None, images=np.zeros((3, 2, 2, 1), np.uint8), labels=np.array([0, 1, 1]),
                splits=np.zeros(3, np.int8), mean_image=np.zeros((2, 2, 1), np.float32), meta={"classes": ["a", "b"]})
    ordered = in_class_order(pack, ["b", "a"])
    assert ordered.classes == ["b", "a"] and ordered.labels.tolist() == [1, 0, 0]
    assert [ordered.classes[i] for i in ordered.labels] == [pack.classes[i] for i in pack.labels]
