from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def name_the_data_of_earlier_runs(apps, schema_editor):
    """Runs made before versions trained on their dataset as it still is (a ready dataset never changes)."""
    Run = apps.get_model("runs", "Run")
    Dataset = apps.get_model("datasets", "Dataset")
    Run.objects.filter(dataset__isnull=False).update(
        dataset_hash=Subquery(Dataset.objects.filter(pk=OuterRef("dataset_id")).values("content_hash")[:1]))


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0003_trials_of_sweeps'),
        ('datasets', '0003_versions'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='dataset_hash',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(name_the_data_of_earlier_runs, migrations.RunPython.noop, elidable=True),
    ]
