import os
from pathlib import Path

from django.conf import settings
from django.db import migrations, models


def _files(folder: Path):
    for root, _, names in os.walk(folder):
        for name in names:
            yield os.lstat(os.path.join(root, name))


def measure(apps, schema_editor):
    """Datasets made before their size was recorded: their packs' files on disk, now (a version's
    segments hard-linked from its parent counted by the parent)."""
    Dataset = apps.get_model("datasets", "Dataset")
    packs = dict(Dataset.objects.exclude(pack_path="").values_list("pk", "pack_path"))
    for dataset in Dataset.objects.exclude(pack_path="").only("pk", "pack_path", "parent_id"):
        folder = settings.DATA_DIR / dataset.pack_path
        if not folder.is_dir():
            continue
        parent = packs.get(dataset.parent_id)
        shared = {(s.st_dev, s.st_ino) for s in _files(settings.DATA_DIR / parent)} if parent else set()
        size = sum(s.st_size for s in _files(folder) if (s.st_dev, s.st_ino) not in shared)
        Dataset.objects.filter(pk=dataset.pk).update(bytes=size)


class Migration(migrations.Migration):

    dependencies = [
        ('datasets', '0003_versions'),
    ]

    operations = [
        migrations.AddField(
            model_name='dataset',
            name='bytes',
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(measure, migrations.RunPython.noop),
    ]
