import io

import pytest
from django.core.management import CommandError, call_command

from apps.datasets.models import Dataset
from apps.datasets.ingest import dataset_ingest
from tests.support.factories import class_entries, zip_bytes

pytestmark = pytest.mark.django_db


def test_import_dataset_from_a_path(world, tmp_path):
    archive = tmp_path / "pets.zip"
    archive.write_bytes(zip_bytes(class_entries()))
    out = io.StringIO()
    call_command("import_dataset", str(archive), "--team", world.team.slug, "--name", "Pets",
                 "--image-size", "16", "--no-wait", stdout=out)
    dataset = Dataset.objects.get()
    assert f"Dataset {dataset.pk} (Pets) queued" in out.getvalue()
    dataset_ingest(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    assert dataset.status == "ready" and dataset.image_size == 16 and dataset.team == world.team


def test_import_dataset_sample(world):
    call_command("import_dataset", "--sample", "digits", "--team", world.team.slug, "--no-wait", stdout=io.StringIO())
    assert Dataset.objects.get().name == "Handwritten digits (sample)"


def test_import_dataset_errors_are_one_sentence(world, tmp_path):
    with pytest.raises(CommandError, match="no team 'nope'"):
        call_command("import_dataset", "x.zip", "--team", "nope")
    with pytest.raises(CommandError, match="is not a file"):
        call_command("import_dataset", str(tmp_path / "missing.zip"), "--team", world.team.slug)
    with pytest.raises(CommandError, match="--val-fraction"):
        call_command("import_dataset", __file__, "--team", world.team.slug, "--val-fraction", "3")
