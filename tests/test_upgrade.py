"""An installation made before the apps were split (runs, their metrics and evaluations, and the weights
library lived in the experiments app) upgrades with `migrate` and loses nothing: its datasets, runs,
metrics, evaluations and weights files are all there, their permissions still apply, and a run trained
before the upgrade still predicts.

The database is taken back to the migrations of that layout, filled through the historical models
(what the code of that time saw), with real files in the data dir, then migrated forward.
"""
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from PIL import Image

from tests.support.factories import OPTIONS, QUICK, light_and_dark_zip
from workers import engine

pytestmark = pytest.mark.django_db(transaction=True)

# The last migrations of the layout before the split: no `runs`, `weights` or `sweeps` app yet.
BEFORE_THE_SPLIT = [("teams", "0001_initial"), ("datasets", "0002_dataset_heartbeat_at"),
                    ("experiments", "0004_run_queued_at"), ("runs", None), ("weights", None), ("sweeps", None)]


def migrate(targets):
    """Migrate to `targets` (Django's own apps stay as they are); the models as they were then."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    named = {app for app, _ in targets}
    nodes = [node for node in executor.loader.graph.leaf_nodes() if node[0] not in named]
    return executor.loader.project_state(nodes + [t for t in targets if t[1]], at_end=True).apps


def made_before_the_split(old, data_dir, tmp_path) -> dict:
    """What the code of that time made: through its models, with real files (their formats have not
    changed) in the data dir."""
    User = old.get_model("auth", "User")
    ContentType = old.get_model("contenttypes", "ContentType")
    Permission = old.get_model("auth", "Permission")
    Team, Membership = old.get_model("teams", "Team"), old.get_model("teams", "Membership")
    Dataset, DatasetClass = old.get_model("datasets", "Dataset"), old.get_model("datasets", "DatasetClass")
    Experiment, Run = old.get_model("experiments", "Experiment"), old.get_model("experiments", "Run")
    EpochMetric, Evaluation = old.get_model("experiments", "EpochMetric"), old.get_model("experiments", "Evaluation")
    WeightsFile, LRFinding = old.get_model("experiments", "WeightsFile"), old.get_model("experiments", "LRFinding")

    user = User.objects.create(username="ada")
    team = Team.objects.create(slug="lab", name="Lab")
    Membership.objects.create(team=team, user=user, role="viewer")
    report = engine.build_pack(light_and_dark_zip(tmp_path / "ld.zip"), data_dir / "packs/1-old", engine.PackOptions(
        **OPTIONS), processes=1)
    dataset = Dataset.objects.create(team=team, name="light and dark", status="ready", progress=1.0,
                                     options=OPTIONS, pack_path="packs/1-old", num_images=report.num_images,
                                     image_size=report.image_size, channels=report.channels, health=report.health)
    for i, counts in enumerate(report.counts):
        DatasetClass.objects.create(dataset=dataset, index=i, **counts)
    weights = WeightsFile.objects.create(team=team, name="some weights", arch="resnet18", path="weights/old.pth",
                                         format="pth", size=3, sha256="0" * 64, tensors=1)
    (data_dir / "weights").mkdir()
    (data_dir / "weights/old.pth").write_bytes(b"old")
    experiment = Experiment.objects.create(team=team, name="quick", dataset=dataset, config=QUICK,
                                           weights_file=weights)
    result = engine.fit(pack=data_dir / "packs/1-old", config=QUICK, out_dir=data_dir / "runs/1-old")
    run = Run.objects.create(experiment=experiment, team=team, dataset=dataset, config=QUICK, arch="smallcnn",
                             status="succeeded", epoch=2, epochs=2, progress=1.0, best_epoch=result.best_epoch,
                             best_val_acc=result.best_val_acc, checkpoint_dir="runs/1-old", weights_file=weights,
                             notes="made before the split", tags=["old"])
    for epoch in (1, 2):
        EpochMetric.objects.create(run=run, epoch=epoch, train_loss=1.0 / epoch, val_acc=0.5 * epoch)
    waiting = Run.objects.create(experiment=experiment, team=team, dataset=dataset, config=QUICK, arch="smallcnn",
                                 epochs=2, checkpoint_dir="runs/2-old")
    Evaluation.objects.create(run=run, **{k: result.evaluation[k] for k in (
        "split", "accuracy", "classes", "confusion", "per_class", "misclassified", "top_k_accuracy")})
    LRFinding.objects.create(experiment=experiment, team=team, status="succeeded", lrs=[1e-3], losses=[0.5])
    run_type = ContentType.objects.get_or_create(app_label="experiments", model="run")[0]
    can_view = Permission.objects.get_or_create(content_type=run_type, codename="view_run",
                                                defaults={"name": "Can view run"})[0]
    user.user_permissions.add(can_view)
    return {"user": user.pk, "run": run.pk, "waiting": waiting.pk, "weights": weights.pk, "experiment": experiment.pk,
            "dataset": dataset.pk, "run_type": run_type.pk, "accuracy": result.evaluation["accuracy"]}


def test_an_installation_from_before_the_split_upgrades_with_migrate_and_loses_nothing(
        isolated_data_dir, tmp_path, django_user_model):
    old = migrate(BEFORE_THE_SPLIT)
    try:
        made = made_before_the_split(old, isolated_data_dir, tmp_path)
    finally:
        call_command("migrate", verbosity=0)  # the upgrade; and the database as every other test expects it

    from django.contrib.contenttypes.models import ContentType

    from apps.datasets.models import Dataset
    from apps.experiments.models import Experiment, LRFinding
    from apps.runs.models import EpochMetric, Evaluation, Run
    from apps.runs.training import run_train
    from apps.serving.predictors import predict
    from apps.weights.models import WeightsFile

    run = Run.objects.get(pk=made["run"])
    assert (run.status, run.notes, run.tags, run.dataset_id) == ("succeeded", "made before the split", ["old"],
                                                                 made["dataset"])
    assert run.weights_file == WeightsFile.objects.get(pk=made["weights"])
    assert Experiment.objects.get(pk=made["experiment"]).weights_file_id == made["weights"]
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", "val_acc")) == [(1, 0.5), (2, 1.0)]
    assert Evaluation.objects.get(run=run).accuracy == made["accuracy"]
    assert Dataset.objects.get(pk=made["dataset"]).classes.count() == 2 and LRFinding.objects.count() == 1
    # The moved models' content type changed app, not identity: permissions granted before still apply.
    assert ContentType.objects.get_for_model(Run).pk == made["run_type"]
    assert not ContentType.objects.filter(app_label="experiments", model="run").exists()
    assert django_user_model.objects.get(pk=made["user"]).has_perm("runs.view_run")

    # The files it trained into are named by the row now; a run still waiting has nothing to resume from,
    # and trains in a folder of its claim.
    assert (run.last_checkpoint, run.best_checkpoint) == ("runs/1-old/last.pt", "runs/1-old/best.pt")
    assert run_train(run_id=made["waiting"], worker="w@upgrade") == "completed"
    assert Run.objects.get(pk=made["waiting"]).best_checkpoint.startswith("runs/2-old/claim-1/")

    image = io.BytesIO()
    Image.new("L", (8, 8), 200).save(image, format="PNG")
    results, _ = predict(run=run, files=[SimpleUploadedFile("light.png", image.getvalue())], top_k=2)
    assert [p["label"] for p in results[0]["predictions"]] == ["light", "dark"]


def test_the_split_migrates_back_as_well():
    migrate(BEFORE_THE_SPLIT)
    try:
        from django.contrib.contenttypes.models import ContentType

        assert not ContentType.objects.filter(app_label="runs").exists()
    finally:
        call_command("migrate", verbosity=0)
    assert set(MigrationExecutor(connection).migration_plan(
        MigrationExecutor(connection).loader.graph.leaf_nodes())) == set()


def test_the_models_match_their_migrations():
    # A model changed without its migration would make the next `migrate` on a deployment a surprise.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
