from django.conf import settings
from django.db import migrations, models


def measure(apps, schema_editor):
    """Runs made before their checkpoints' size was recorded: the files the row names, now."""
    Run = apps.get_model("runs", "Run")
    rows = Run.objects.exclude(last_checkpoint="", best_checkpoint="").values_list("pk", "last_checkpoint",
                                                                                  "best_checkpoint")
    for pk, last, best in rows:
        size = 0
        for name in {last, best} - {""}:
            path = settings.DATA_DIR / name
            size += path.stat().st_size if path.is_file() else 0
        Run.objects.filter(pk=pk).update(checkpoint_bytes=size)


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0006_peak_gpu_memory_per_epoch'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='checkpoint_bytes',
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(measure, migrations.RunPython.noop),
    ]
