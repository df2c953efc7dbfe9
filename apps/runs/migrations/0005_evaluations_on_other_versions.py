import django.db.models.deletion
from django.db import migrations, models


def forget_the_content_type(apps, schema_editor):
    """Going back, the model's content type (and its permissions) go with it, as if it never was."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="runs", model="versionevaluation").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('datasets', '0003_versions'),
        ('runs', '0004_the_data_a_run_trained_on'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.CreateModel(
            name='VersionEvaluation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('dataset_hash', models.CharField(blank=True, max_length=64)),
                ('dataset_version', models.PositiveIntegerField(default=1)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='queued', max_length=10)),
                ('error', models.TextField(blank=True)),
                ('split', models.CharField(blank=True, max_length=5)),
                ('accuracy', models.FloatField(blank=True, null=True)),
                ('classes', models.JSONField(default=list)),
                ('confusion', models.JSONField(default=list)),
                ('per_class', models.JSONField(default=list)),
                ('misclassified', models.JSONField(default=list)),
                ('top_k_accuracy', models.JSONField(blank=True, default=dict)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('dataset', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='datasets.dataset')),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='evaluations', to='runs.run')),
            ],
            options={
                'ordering': ['run', '-created'],
                'constraints': [models.UniqueConstraint(fields=('run', 'dataset'), name='one_evaluation_per_version')],
            },
        ),
        migrations.RunPython(migrations.RunPython.noop, forget_the_content_type),
    ]
