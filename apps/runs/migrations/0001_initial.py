# Runs, their epoch metrics and evaluations were part of the experiments app until 0005 there: the
# models move here, their tables (experiments_run, experiments_epochmetric, experiments_evaluation),
# indexes and rows stay where they are.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ("run", "epochmetric", "evaluation")


def content_types_follow(apps, schema_editor):
    """An upgraded database keeps its permissions and admin history: the moved models' content types
    change app, rather than new ones being made beside them."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="runs", model=model).exists():
            ContentType.objects.filter(app_label="experiments", model=model).update(app_label="runs")


def content_types_return(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="runs", model__in=MOVED).update(app_label="experiments")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('datasets', '0002_dataset_heartbeat_at'),
        ('experiments', '0004_run_queued_at'),
        ('teams', '0001_initial'),
        ('weights', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Run',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('config', models.JSONField(default=dict, help_text="The experiment's config with this run's overrides.")),
                        ('arch', models.CharField(db_index=True, max_length=40)),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], db_index=True, default='queued', max_length=10)),
                        ('attempt', models.PositiveSmallIntegerField(default=1)),
                        ('lease_owner', models.CharField(blank=True, max_length=200)),
                        ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                        ('cancel_requested', models.BooleanField(default=False)),
                        ('queued_at', models.DateTimeField(blank=True, null=True)),
                        ('epoch', models.IntegerField(default=0, help_text='Epochs completed.')),
                        ('epochs', models.IntegerField(default=0)),
                        ('progress', models.FloatField(default=0.0)),
                        ('eta_seconds', models.FloatField(blank=True, null=True)),
                        ('best_epoch', models.IntegerField(blank=True, null=True)),
                        ('best_val_acc', models.FloatField(blank=True, db_index=True, null=True)),
                        ('test_acc', models.FloatField(blank=True, null=True)),
                        ('device', models.CharField(blank=True, max_length=100)),
                        ('worker', models.CharField(blank=True, max_length=200)),
                        ('torch_version', models.CharField(blank=True, max_length=40)),
                        ('code_version', models.CharField(blank=True, max_length=40)),
                        ('checkpoint_dir', models.CharField(blank=True, help_text='Relative to the data dir.', max_length=300)),
                        ('error', models.TextField(blank=True)),
                        ('traceback', models.TextField(blank=True)),
                        ('notes', models.TextField(blank=True)),
                        ('tags', models.JSONField(blank=True, default=list)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('dataset', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='runs', to='datasets.dataset')),
                        ('experiment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='runs', to='experiments.experiment')),
                        ('parent', models.ForeignKey(blank=True, help_text='The run whose weights this one started from.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='children', to='runs.run')),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='runs', to='teams.team')),
                        ('weights_file', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='runs', to='weights.weightsfile')),
                    ],
                    options={
                        'db_table': 'experiments_run',
                        'ordering': ['-created', '-id'],
                        'indexes': [
                            models.Index(fields=['team', '-created', '-id'], name='run_team_created_id'),
                            models.Index(fields=['team', '-best_val_acc', '-id'], name='run_team_best_val_acc_id'),
                            models.Index(fields=['team', 'status'], name='experiments_team_id_f7681f_idx'),
                            models.Index(fields=['status', 'heartbeat_at'], name='experiments_status_a57716_idx'),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name='EpochMetric',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('epoch', models.IntegerField()),
                        ('train_loss', models.FloatField(null=True)),
                        ('train_acc', models.FloatField(null=True)),
                        ('val_loss', models.FloatField(null=True)),
                        ('val_acc', models.FloatField(null=True)),
                        ('lr', models.FloatField(null=True)),
                        ('seconds', models.FloatField(null=True)),
                        ('images_per_s', models.FloatField(null=True)),
                        ('attempt', models.PositiveSmallIntegerField(default=1, help_text='The attempt of the run that wrote it.')),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='metrics', to='runs.run')),
                    ],
                    options={
                        'db_table': 'experiments_epochmetric',
                        'ordering': ['run', 'epoch'],
                        'constraints': [models.UniqueConstraint(fields=('run', 'epoch'), name='one_metric_per_epoch')],
                    },
                ),
                migrations.CreateModel(
                    name='Evaluation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('split', models.CharField(max_length=5)),
                        ('accuracy', models.FloatField()),
                        ('classes', models.JSONField(default=list)),
                        ('confusion', models.JSONField(default=list)),
                        ('per_class', models.JSONField(default=list)),
                        ('misclassified', models.JSONField(default=list)),
                        ('top_k_accuracy', models.JSONField(blank=True, default=dict)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('run', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='evaluation', to='runs.run')),
                    ],
                    options={
                        'db_table': 'experiments_evaluation',
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
