from django.conf import settings
from django.db import models


class Experiment(models.Model):
    """A named training configuration on a dataset; each start of it is a Run."""

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="experiments")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200)
    # A deleted dataset leaves the experiment and its run history in place, marked as gone.
    dataset = models.ForeignKey("datasets.Dataset", null=True, on_delete=models.SET_NULL, related_name="experiments")
    config = models.JSONField(default=dict, help_text="The full, validated training config.")
    weights_file = models.ForeignKey("weights.WeightsFile", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+",
                                     help_text="With pretrained \"imagenet\": these weights instead of the cache.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        # The list's keyset pages seek (created, id) within the team (dlstudio/pagination.py).
        indexes = [models.Index(fields=["team", "-created", "-id"], name="experiment_team_created_id")]

    def __str__(self):
        return self.name


class LRFinding(models.Model):
    """An LR range test of an experiment's config, run by a training worker."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    experiment = models.ForeignKey("experiments.Experiment", on_delete=models.CASCADE, related_name="lr_findings")
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    lrs = models.JSONField(default=list, blank=True)
    losses = models.JSONField(default=list, blank=True)
    suggested_lr = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
