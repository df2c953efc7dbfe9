from django.conf import settings
from django.db import models


class Sweep(models.Model):
    """Many runs of one experiment that answer one question (which learning rate, which optimizer).

    Each trial is an ordinary run with overrides drawn from `parameters`; the runs' rows are the
    sweep's truth (docs/ARCHITECTURE.md, "Sweeps"): what Optuna knows is rebuilt from them each time.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    class Method(models.TextChoices):
        GRID = "grid", "Grid"
        RANDOM = "random", "Random"
        TPE = "tpe", "TPE (Bayesian)"

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="sweeps")
    experiment = models.ForeignKey("experiments.Experiment", on_delete=models.CASCADE, related_name="sweeps")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200)
    method = models.CharField(max_length=10, choices=Method.choices)
    parameters = models.JSONField(help_text="{config key: search space}, as validated.")
    trials = models.PositiveIntegerField(help_text="How many runs in all (a grid: its whole product).")
    max_parallel = models.PositiveSmallIntegerField(default=2)
    metric = models.CharField(max_length=20, default="val_acc")
    early_stop = models.JSONField(null=True, blank=True)
    seed = models.IntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["team", "-created", "-id"], name="sweep_team_created_id")]

    def __str__(self):
        return self.name
