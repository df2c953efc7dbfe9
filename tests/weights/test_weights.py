"""The team weights library: checked uploads, the pages and API with their roles, the experiment form's
"Weights" choice, and runs that start from an uploaded file (or fail saying which file is missing)."""
import hashlib
import io
import zipfile

import pytest
import torch
import torchvision
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from dlstudio import storage
from apps.experiments.models import Experiment
from apps.experiments.services import experiment_create
from apps.runs.models import Run
from apps.runs.services import run_start
from apps.weights.models import WeightsFile
from apps.runs.training import run_train
from apps.weights.services import weights_file_create
from tests.support.factories import QUICK
from tests.support.factories import form_data, sign_in

pytestmark = pytest.mark.django_db

RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's name, the one the messages must name
TINY_RESNET = {**QUICK, "arch": "resnet18", "pretrained": "imagenet", "epochs": 1, "batch_size": 8,
               "freeze_backbone_epochs": 1}  # the head only: quick on a CPU, and still loads every weight


@pytest.fixture(autouse=True)
def empty_cache(torch_home):
    """An empty torchvision cache, so the machine's real one can't interfere; the network is off limits."""
    return torch_home


def _saved(state, **save_options) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer, **save_options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def resnet18_state():
    torch.manual_seed(7)
    return torchvision.models.resnet18(weights=None).state_dict()


@pytest.fixture(scope="module")
def resnet18_pth(resnet18_state) -> bytes:
    return _saved(resnet18_state)


@pytest.fixture(scope="module")
def resnet18_safetensors(resnet18_state) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in resnet18_state.items()})


@pytest.fixture(scope="module")
def mobilenet_pth() -> bytes:
    return _saved(torchvision.models.mobilenet_v3_small(weights=None).state_dict())


class Payload:
    """Unpickling this calls open(marker, "w"): code from the file running on the server."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def upload_page(client, content: bytes, *, filename="resnet18.pth", arch="resnet18", name="ImageNet resnet18"):
    return client.post(reverse("weights_upload"), {"file": SimpleUploadedFile(filename, content), "arch": arch,
                                                   "name": name})


def stored_files(data_dir) -> list:
    folder = data_dir / "weights"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture
def resnet18_weights(world, resnet18_pth):
    return weights_file_create(team=world.team, user=world.editor, name="resnet18 from the team", arch="resnet18",
                               upload=SimpleUploadedFile("resnet18.pth", resnet18_pth))


# --- uploads ---------------------------------------------------------------------------------

def test_a_torchvision_state_dict_is_checked_stored_under_a_generated_name_and_listed(
        client, world, resnet18_pth, resnet18_state, data_dir):
    c = sign_in(client, world.editor, world.team)
    response = upload_page(c, resnet18_pth)
    assert response.status_code == 302 and response.url == reverse("weights_list")
    weights = WeightsFile.objects.get()
    assert (weights.team, weights.created_by, weights.name, weights.arch) == (world.team, world.editor,
                                                                              "ImageNet resnet18", "resnet18")
    assert weights.format == "pth" and weights.size == len(resnet18_pth) and weights.tensors == len(resnet18_state)
    assert weights.sha256 == hashlib.sha256(resnet18_pth).hexdigest()
    assert stored_files(data_dir) == [data_dir / weights.path]
    assert weights.path.startswith("weights/") and weights.path.endswith(".pth") and "resnet18" not in weights.path

    page = c.get(reverse("weights_list")).content.decode()
    assert "ImageNet resnet18" in page and weights.sha256[:12] in page and "eddie" in page
    assert reverse("weights_delete", args=[weights.pk]) in page


def test_a_safetensors_state_dict_is_accepted_through_the_api(world, api_as, resnet18_safetensors, resnet18_state):
    client = api_as(world.owner)
    response = client.post("/api/weights", {"file": SimpleUploadedFile("r18.safetensors", resnet18_safetensors),
                                            "arch": "resnet18", "team": world.team.slug}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["format"] == "safetensors" and body["tensors"] == len(resnet18_state)
    assert body["name"] == "r18.safetensors" and body["team"] == world.team.slug and body["created_by"] == "olivia"
    assert body["sha256"] == hashlib.sha256(resnet18_safetensors).hexdigest()
    assert WeightsFile.objects.get().path.endswith(".safetensors")
    listed = client.get("/api/weights?arch=resnet18").json()
    assert [w["id"] for w in listed["results"]] == [body["id"]] and listed["count"] == 1
    assert client.get("/api/weights?arch=vgg16").json()["count"] == 0
    assert client.get(f"/api/weights/{body['id']}").json() == body


@pytest.mark.parametrize("new_format", [True, False], ids=["zip", "legacy"])
def test_a_file_carrying_a_pickle_payload_is_refused_and_never_executed(
        client, world, api_as, resnet18_state, tmp_path, data_dir, new_format):
    marker = tmp_path / "the-payload-ran"
    evil = _saved({**resnet18_state, "extra": Payload(marker)}, _use_new_zipfile_serialization=new_format)
    response = upload_page(sign_in(client, world.editor, world.team), evil)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-field="file"' in page and "not plain weights" in page and "resnet18.pth" in page

    response = api_as(world.editor).post("/api/weights", {"file": SimpleUploadedFile("evil.pt", evil),
                                                          "arch": "resnet18"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["field"] == "file" and "evil.pt is not plain weights" in response.json()["error"]
    assert not marker.exists()
    assert not WeightsFile.objects.exists() and stored_files(data_dir) == []


def test_a_state_dict_of_another_arch_is_refused_naming_the_arch(client, world, mobilenet_pth, data_dir):
    response = upload_page(sign_in(client, world.editor, world.team), mobilenet_pth, filename="mobilenet.pth")
    page = response.content.decode()
    assert 'data-field="arch"' in page and "mobilenet.pth do not fit resnet18" in page
    assert not WeightsFile.objects.exists() and stored_files(data_dir) == []


def _zip(compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr("notes/data.pkl" if compression else "notes/readme.txt", b"x" * 10_000)
    return buffer.getvalue()


@pytest.mark.parametrize("filename, content, says", [
    ("notes.txt", b"just some text\n", "is not a .pth, .pt or .safetensors file"),
    ("notes.pth", b"just some text\n", "is neither a PyTorch file (torch.save) nor a safetensors file"),
    ("empty.pth", b"", "is empty"),
    ("archive.pth", _zip(), "is a zip archive but not a PyTorch file"),
    ("packed.pth", _zip(zipfile.ZIP_DEFLATED), "holds compressed entries"),
    ("numbers.pt", _saved([1, 2, 3]), "is not a state dict of tensors"),
    ("header.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}", "damaged safetensors header"),
])
def test_files_that_are_not_state_dicts_are_refused(client, world, data_dir, filename, content, says):
    response = upload_page(sign_in(client, world.editor, world.team), content, filename=filename)
    page = response.content.decode()
    assert response.status_code == 200 and 'data-field="file"' in page and says in page, page
    assert not WeightsFile.objects.exists() and stored_files(data_dir) == []


def test_an_arch_without_imagenet_weights_is_refused(world, api_as, resnet18_pth):
    response = api_as(world.editor).post("/api/weights", {"file": SimpleUploadedFile("r.pth", resnet18_pth),
                                                          "arch": "smallcnn"}, format="multipart")
    assert response.status_code == 400 and response.json()["field"] == "arch"
    assert "smallcnn has no ImageNet weights" in response.json()["error"]


def test_the_size_limit_applies_before_anything_is_read(world, settings, resnet18_pth, data_dir):
    from django.core.exceptions import ValidationError

    settings.MAX_UPLOAD_MB = 1
    with pytest.raises(ValidationError) as caught:
        weights_file_create(team=world.team, user=world.editor, name="", arch="resnet18",
                            upload=SimpleUploadedFile("r.pth", resnet18_pth))
    assert caught.value.code == "file" and "larger than the limit of 1 MB" in caught.value.messages[0]
    assert stored_files(data_dir) == []


# --- roles -----------------------------------------------------------------------------------

def test_viewers_read_editors_upload_and_delete(client, world, resnet18_weights, resnet18_pth,
                                                django_capture_on_commit_callbacks, data_dir):
    c = sign_in(client, world.viewer, world.team)
    assert c.get(reverse("weights_list")).status_code == 200
    assert c.get(reverse("weights_upload")).status_code == 403
    assert upload_page(c, resnet18_pth).status_code == 403
    assert c.post(reverse("weights_delete", args=[resnet18_weights.pk])).status_code == 403
    page = c.get(reverse("weights_list")).content.decode()
    assert "resnet18 from the team" in page and reverse("weights_delete", args=[resnet18_weights.pk]) not in page

    c = sign_in(client, world.owner, world.team)
    with django_capture_on_commit_callbacks(execute=True):
        response = c.post(reverse("weights_delete", args=[resnet18_weights.pk]))
    assert response.url == reverse("weights_list")
    assert not WeightsFile.objects.exists() and stored_files(data_dir) == []


def test_an_outsider_gets_404_and_sees_nothing(client, world, resnet18_weights, api_as):
    c = sign_in(client, world.outsider, world.team)
    assert c.post(reverse("weights_delete", args=[resnet18_weights.pk])).status_code == 404
    assert "resnet18 from the team" not in c.get(reverse("weights_list")).content.decode()
    api = api_as(world.outsider)
    assert api.get(f"/api/weights/{resnet18_weights.pk}").status_code == 404
    assert api.delete(f"/api/weights/{resnet18_weights.pk}").status_code == 404
    assert api.get("/api/weights").json()["count"] == 0
    response = api.post("/api/weights", {"file": SimpleUploadedFile("r.pth", b"x"), "arch": "resnet18",
                                         "team": world.team.slug}, format="multipart")
    assert response.status_code == 404
    assert WeightsFile.objects.filter(pk=resnet18_weights.pk).exists()


def test_anonymous_visitors_are_sent_to_sign_in_and_the_api_answers_401(client, world, resnet18_weights, api_as):
    for url, method in [(reverse("weights_list"), "get"), (reverse("weights_upload"), "get"),
                        (reverse("weights_upload"), "post"),
                        (reverse("weights_delete", args=[resnet18_weights.pk]), "post")]:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and reverse("login") in response.url, url
    api = api_as(None)
    assert api.get("/api/weights").status_code == 401
    assert api.post("/api/weights", {}).status_code == 401
    assert api.get(f"/api/weights/{resnet18_weights.pk}").status_code == 401
    assert api.delete(f"/api/weights/{resnet18_weights.pk}").status_code == 401
    assert WeightsFile.objects.exists()


def test_the_api_follows_the_same_roles(world, api_as, resnet18_weights, resnet18_pth,
                                        django_capture_on_commit_callbacks):
    viewer = api_as(world.viewer)
    assert viewer.get(f"/api/weights/{resnet18_weights.pk}").json()["name"] == "resnet18 from the team"
    response = viewer.post("/api/weights", {"file": SimpleUploadedFile("r.pth", resnet18_pth), "arch": "resnet18",
                                            "team": world.team.slug}, format="multipart")
    assert response.status_code == 403 and "viewer" in response.json()["error"]
    assert viewer.delete(f"/api/weights/{resnet18_weights.pk}").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        assert api_as(world.editor).delete(f"/api/weights/{resnet18_weights.pk}").status_code == 204
    assert not WeightsFile.objects.exists()


def test_a_file_in_use_by_a_queued_run_is_not_deleted(client, world, dataset, resnet18_weights, api_as):
    experiment = experiment_create(team=world.team, user=world.editor, name="from imagenet",
                                   dataset=dataset, config=TINY_RESNET, weights_file=resnet18_weights)
    run_start(experiment=experiment, user=world.editor)
    response = sign_in(client, world.editor, world.team).post(reverse("weights_delete", args=[resnet18_weights.pk]),
                                                       follow=True)
    assert "used by a run that is queued or running" in response.content.decode()
    response = api_as(world.editor).delete(f"/api/weights/{resnet18_weights.pk}")
    assert response.status_code == 400 and "queued or running" in response.json()["error"]
    assert WeightsFile.objects.filter(pk=resnet18_weights.pk).exists()


# --- the experiment form ---------------------------------------------------------------------

def test_the_form_offers_the_library_files_with_their_arch(client, world, dataset, resnet18_weights):
    page = sign_in(client, world.editor, world.team).get(reverse("experiment_create")).content.decode()
    assert 'name="weights_file"' in page and "torchvision&#x27;s file from the local cache" in page
    assert f'value="{resnet18_weights.pk}" data-arch="resnet18"' in page and "resnet18 from the team" in page
    assert reverse("weights_list") in page
    assert 'id="imagenet-cache-warning" hidden' in page  # "Start from" is not ImageNet yet


def test_the_created_experiment_and_its_run_carry_the_weights_file(client, world, dataset, resnet18_weights):
    c = sign_in(client, world.editor, world.team)
    response = c.post(reverse("experiment_create"), form_data(
        dataset, arch="resnet18", pretrained="imagenet", weights_file=str(resnet18_weights.pk), start="1"))
    experiment = Experiment.objects.get(name="from the form")
    run = experiment.runs.get()
    assert response.url == reverse("run_detail", args=[run.pk])
    assert experiment.weights_file == resnet18_weights and run.weights_file == resnet18_weights
    assert experiment.config["pretrained"] == "imagenet"
    # A clone keeps the choice.
    page = c.get(reverse("experiment_create") + f"?from_experiment={experiment.pk}").content.decode()
    assert f'value="{resnet18_weights.pk}" selected data-arch="resnet18"' in page


def test_a_file_of_another_arch_is_refused_beside_the_field(client, world, dataset, resnet18_weights):
    response = sign_in(client, world.editor, world.team).post(reverse("experiment_create"), form_data(
        dataset, arch="resnet34", pretrained="imagenet", weights_file=str(resnet18_weights.pk)))
    page = response.content.decode()
    assert response.status_code == 200 and 'data-field="weights_file"' in page
    assert "is for resnet18, not resnet34" in page and not Experiment.objects.exists()


def test_a_leftover_weights_choice_is_ignored_when_not_starting_from_imagenet(client, world, dataset,
                                                                              resnet18_weights):
    sign_in(client, world.editor, world.team).post(reverse("experiment_create"), form_data(
        dataset, arch="resnet18", pretrained="", weights_file=str(resnet18_weights.pk)))
    experiment = Experiment.objects.get()
    assert experiment.weights_file is None and experiment.config["pretrained"] is None


def test_another_teams_file_is_not_a_choice(client, world, dataset, resnet18_pth):
    theirs = weights_file_create(team=world.other_team, user=world.outsider, name="theirs", arch="resnet18",
                                 upload=SimpleUploadedFile("r.pth", resnet18_pth))
    c = sign_in(client, world.editor, world.team)
    assert "theirs" not in c.get(reverse("experiment_create")).content.decode()
    response = c.post(reverse("experiment_create"), form_data(
        dataset, arch="resnet18", pretrained="imagenet", weights_file=str(theirs.pk)))
    assert b'data-field="weights_file"' in response.content and not Experiment.objects.exists()


def test_a_missing_cache_file_is_a_warning_naming_file_and_folder_not_a_refusal(client, world, dataset, torch_home):
    c = sign_in(client, world.editor, world.team)
    response = c.post(reverse("experiment_create"), form_data(dataset, arch="resnet18", pretrained="imagenet",
                                                              weights_file=""), follow=True)
    experiment = Experiment.objects.get()
    assert experiment.weights_file is None and experiment.config["pretrained"] == "imagenet"
    folder = str(torch_home / "hub" / "checkpoints")
    page = response.content.decode()
    assert f"{RESNET18_FILE} (torchvision&#x27;s ImageNet weights for resnet18) is not in {folder}" in page

    page = c.get(reverse("experiment_create") + f"?from_experiment={experiment.pk}").content.decode()
    warning = page[page.index('id="imagenet-cache-warning"'):]
    warning = warning[:warning.index("</p>")]
    assert "hidden" not in warning.split(">")[0]
    assert RESNET18_FILE in warning and folder in page and "GPU workers" in warning

    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    (torch_home / "hub" / "checkpoints" / RESNET18_FILE).write_bytes(b"present")
    page = c.get(reverse("experiment_create") + f"?from_experiment={experiment.pk}").content.decode()
    assert 'id="imagenet-cache-warning" hidden' in page
    page = c.get(reverse("weights_list")).content.decode()
    assert folder in page and RESNET18_FILE in page and "present" in page


# --- runs ------------------------------------------------------------------------------------

def test_a_run_from_an_uploaded_file_trains_on_grayscale_images(world, dataset, resnet18_weights, resnet18_state):
    from workers.engine.train.checkpoint import load_checkpoint

    assert dataset.channels == 1
    experiment = experiment_create(team=world.team, user=world.editor, name="from imagenet",
                                   dataset=dataset, config=TINY_RESNET, weights_file=resnet18_weights)
    run = run_start(experiment=experiment, user=world.editor)
    assert run.weights_file == resnet18_weights
    run_train(run_id=run.pk, worker="w@test")
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.epoch == 1 and run.best_val_acc is not None
    # The frozen backbone still holds the uploaded weights; the RGB filters were summed for gray input.
    trained = load_checkpoint(storage.absolute(run.best_checkpoint))["model"]
    assert torch.equal(trained["features.layer4.1.conv2.weight"], resnet18_state["layer4.1.conv2.weight"])
    assert torch.allclose(trained["features.conv1.weight"], resnet18_state["conv1.weight"].sum(dim=1, keepdim=True))


def test_without_a_file_or_a_cached_one_the_run_fails_naming_file_and_folder(world, dataset, torch_home):
    experiment = experiment_create(team=world.team, user=world.editor, name="from the cache",
                                   dataset=dataset, config=TINY_RESNET)
    run = run_start(experiment=experiment, user=world.editor)
    run_train(run_id=run.pk, worker="w@test")
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert RESNET18_FILE in run.error and str(torch_home / "hub" / "checkpoints") in run.error
    assert "upload it as a weights file" in run.error


def test_the_api_creates_an_experiment_with_a_weights_file(world, dataset, api_as, resnet18_weights):
    api = api_as(world.editor)
    config = {"arch": "resnet18", "pretrained": "imagenet", "epochs": 1}
    response = api.post("/api/experiments", {"name": "tl", "dataset": dataset.pk, "config": config,
                                             "weights_file": resnet18_weights.pk}, format="json")
    assert response.status_code == 201
    assert api.get(f"/api/experiments/{response.json()['id']}").json()["weights_file"] == resnet18_weights.pk
    wrong_arch = api.post("/api/experiments", {"name": "x", "dataset": dataset.pk, "weights_file": resnet18_weights.pk,
                                               "config": {**config, "arch": "resnet34"}}, format="json")
    assert wrong_arch.status_code == 400 and wrong_arch.json()["field"] == "weights_file"
    foreign = api_as(world.outsider).post("/api/experiments", {"name": "x", "dataset": dataset.pk, "config": config,
                                                               "weights_file": resnet18_weights.pk}, format="json")
    assert foreign.status_code == 404
