import django.db.models.deletion
from django.db import migrations, models


def hash_the_ready_datasets(apps, schema_editor):
    """Datasets made before versions get their content hash from their pack (measured there when the
    pack predates stored hashes); one whose pack is missing or unreadable keeps an empty hash."""
    from dlstudio import storage
    from workers.engine import PackError, open_pack

    Dataset = apps.get_model("datasets", "Dataset")
    for dataset in Dataset.objects.filter(status="ready").exclude(pack_path="").only("pk", "pack_path"):
        try:
            digest = open_pack(storage.absolute(dataset.pack_path)).content_hash
        except (OSError, ValueError, PackError):
            continue
        Dataset.objects.filter(pk=dataset.pk).update(content_hash=digest)


class Migration(migrations.Migration):

    dependencies = [
        ('datasets', '0002_dataset_heartbeat_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='dataset',
            name='changes',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='dataset',
            name='content_hash',
            field=models.CharField(blank=True, db_index=True, max_length=64),
        ),
        migrations.AddField(
            model_name='dataset',
            name='parent',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='children', to='datasets.dataset'),
        ),
        migrations.AddField(
            model_name='dataset',
            name='root',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='datasets.dataset'),
        ),
        migrations.AddField(
            model_name='dataset',
            name='version',
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.RunPython(hash_the_ready_datasets, migrations.RunPython.noop, elidable=True),
    ]
