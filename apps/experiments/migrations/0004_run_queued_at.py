from django.db import migrations, models
from django.db.models import F


def queued_since_created(apps, schema_editor):
    # Runs already waiting: their message was sent when they were created (or requeued, later,
    # which only makes the reaper look at them sooner; a message still in the broker is left alone).
    Run = apps.get_model("experiments", "Run")
    Run.objects.filter(status="queued").update(queued_at=F("created"))


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0003_lrfinding_weightsfile_experiment_weights_file_and_more'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='queued_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(queued_since_created, migrations.RunPython.noop),
    ]
