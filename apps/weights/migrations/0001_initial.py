# The weights library was part of the experiments app until 0005 there: the model moves here, its
# table (experiments_weightsfile) and rows stay where they are.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ("weightsfile",)


def content_types_follow(apps, schema_editor):
    """An upgraded database keeps its permissions and admin history: the moved models' content types
    change app, rather than new ones being made beside them."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="weights", model=model).exists():
            ContentType.objects.filter(app_label="experiments", model=model).update(app_label="weights")


def content_types_return(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="weights", model__in=MOVED).update(app_label="experiments")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('experiments', '0004_run_queued_at'),
        ('teams', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='WeightsFile',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200)),
                        ('arch', models.CharField(max_length=40)),
                        ('path', models.CharField(help_text='Relative to the data dir; a generated name.', max_length=300)),
                        ('format', models.CharField(max_length=12)),
                        ('size', models.BigIntegerField(default=0)),
                        ('sha256', models.CharField(max_length=64)),
                        ('tensors', models.IntegerField(default=0)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='weights_files', to='teams.team')),
                    ],
                    options={
                        'db_table': 'experiments_weightsfile',
                        'ordering': ['-created', '-id'],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
