from django.conf import settings
from django.db import models

from apps.datasets.models import Dataset
from apps.teams.models import Team


class WeightsFile(models.Model):
    """A team's uploaded starting weights (a state dict, `.pth` or `.safetensors`), checked on upload
    to be plain tensors that fit `arch`. Used for `pretrained: "imagenet"` instead of the local cache."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="weights_files")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200)
    arch = models.CharField(max_length=40)
    path = models.CharField(max_length=300, help_text="Relative to the data dir; a generated name.")
    format = models.CharField(max_length=12)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    tensors = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self):
        return self.name


class Experiment(models.Model):
    """A named training configuration on a dataset; each start of it is a Run."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="experiments")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200)
    # A deleted dataset leaves the experiment and its run history in place, marked as gone.
    dataset = models.ForeignKey(Dataset, null=True, on_delete=models.SET_NULL, related_name="experiments")
    config = models.JSONField(default=dict, help_text="The full, validated training config.")
    weights_file = models.ForeignKey(WeightsFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     help_text="With pretrained \"imagenet\": these weights instead of the cache.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["team", "-created"])]

    def __str__(self):
        return self.name


class Run(models.Model):
    """One training of an experiment. Its row, not the broker, is the source of truth."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    MAX_ATTEMPTS = 3
    FINISHED_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    # Copied from the experiment so lists filter and scope without joins.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="runs")
    dataset = models.ForeignKey(Dataset, null=True, on_delete=models.SET_NULL, related_name="runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                               help_text="The run whose weights this one started from.")
    config = models.JSONField(default=dict, help_text="The experiment's config with this run's overrides.")
    weights_file = models.ForeignKey(WeightsFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    arch = models.CharField(max_length=40, db_index=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    lease_owner = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # When its latest `train_run` message was sent. A run queued longer than the stale horizon whose
    # message the broker no longer holds (Redis restarted empty) is sent again by the reaper.
    queued_at = models.DateTimeField(null=True, blank=True)

    epoch = models.IntegerField(default=0, help_text="Epochs completed.")
    epochs = models.IntegerField(default=0)
    progress = models.FloatField(default=0.0)
    eta_seconds = models.FloatField(null=True, blank=True)
    best_epoch = models.IntegerField(null=True, blank=True)
    best_val_acc = models.FloatField(null=True, blank=True, db_index=True)
    test_acc = models.FloatField(null=True, blank=True)

    device = models.CharField(max_length=100, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    torch_version = models.CharField(max_length=40, blank=True)
    code_version = models.CharField(max_length=40, blank=True)
    checkpoint_dir = models.CharField(max_length=300, blank=True, help_text="Relative to the data dir.")
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    notes = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)

    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            # The full sort key of the lists (-created, -id), so a page is read in index order with no
            # sort of the team's whole history; and the same for "best validation accuracy".
            models.Index(fields=["team", "-created", "-id"], name="run_team_created_id"),
            models.Index(fields=["team", "-best_val_acc", "-id"], name="run_team_best_val_acc_id"),
            models.Index(fields=["team", "status"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]

    def __str__(self):
        return f"Run {self.pk} of {self.experiment}"

    @property
    def is_active(self):
        return self.status in self.ACTIVE_STATUSES


class EpochMetric(models.Model):
    """One epoch of a run; written by epoch number, so a re-reported epoch replaces itself."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    epoch = models.IntegerField()
    train_loss = models.FloatField(null=True)
    train_acc = models.FloatField(null=True)
    val_loss = models.FloatField(null=True)
    val_acc = models.FloatField(null=True)
    lr = models.FloatField(null=True)
    seconds = models.FloatField(null=True)
    images_per_s = models.FloatField(null=True)
    attempt = models.PositiveSmallIntegerField(default=1, help_text="The attempt of the run that wrote it.")

    class Meta:
        ordering = ["run", "epoch"]
        constraints = [models.UniqueConstraint(fields=["run", "epoch"], name="one_metric_per_epoch")]


class Evaluation(models.Model):
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="evaluation")
    split = models.CharField(max_length=5)
    accuracy = models.FloatField()
    classes = models.JSONField(default=list)
    confusion = models.JSONField(default=list)
    per_class = models.JSONField(default=list)
    misclassified = models.JSONField(default=list)
    top_k_accuracy = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)


class LRFinding(models.Model):
    """An LR range test of an experiment's config, run by a training worker."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="lr_findings")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
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
