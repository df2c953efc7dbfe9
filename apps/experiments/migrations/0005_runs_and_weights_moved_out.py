# Runs (with their metrics and evaluations) and the weights library became apps of their own
# (runs.0001, weights.0001). Only this app's view of them goes: the tables and rows stay.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0004_run_queued_at'),
        ('runs', '0001_initial'),
        ('weights', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='Evaluation'),
                migrations.DeleteModel(name='EpochMetric'),
                migrations.DeleteModel(name='Run'),
                migrations.AlterField(
                    model_name='experiment',
                    name='weights_file',
                    field=models.ForeignKey(blank=True, help_text='With pretrained "imagenet": these weights instead of the cache.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='weights.weightsfile'),
                ),
                migrations.DeleteModel(name='WeightsFile'),
            ],
            database_operations=[],
        ),
    ]
