from django.conf import settings
from django.db import models


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
    # Attempts whose worker was killed (its witness saw it vanish mid-job, workers/witness.py) before the
    # run is failed as most likely too big for the memory, rather than killing another worker.
    MAX_KILLS = 2
    FINISHED_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    experiment = models.ForeignKey("experiments.Experiment", on_delete=models.CASCADE, related_name="runs")
    # Copied from the experiment so lists filter and scope without joins.
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="runs")
    dataset = models.ForeignKey("datasets.Dataset", null=True, on_delete=models.SET_NULL, related_name="runs")
    # The content hash of the data it trained on: still names it after the dataset row is deleted.
    dataset_hash = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                               help_text="The run whose weights this one started from.")
    config = models.JSONField(default=dict, help_text="The experiment's config with this run's overrides.")
    weights_file = models.ForeignKey("weights.WeightsFile", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="runs")
    arch = models.CharField(max_length=40, db_index=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    killed_attempts = models.PositiveSmallIntegerField(default=0, help_text=(
        "Attempts that ended with the worker process gone mid-job (SIGKILL, as the out-of-memory killer sends)."))
    # The fencing token: it grows with every claim, and every write a worker makes about the run is
    # conditional on the lease of its claim, so a worker that lost the run (stopped, then handed on by
    # the reaper) changes nothing when it wakes up. Checkpoints are written per claim, under
    # `<checkpoint_dir>/claim-<fence>/`, and become the run's only when the row names them.
    fence = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # When its latest `runs.train` message was sent. A run queued longer than the stale horizon whose
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
    # What the worker trained with (engine.environment): versions, GPU, host, code, deterministic.
    environment = models.JSONField(default=dict, blank=True)
    checkpoint_dir = models.CharField(max_length=300, blank=True, help_text="Relative to the data dir.")
    # The checkpoints that are the run's, relative to the data dir: where it resumes from, and the weights
    # of `best_epoch` (named in the same write that records that epoch).
    last_checkpoint = models.CharField(max_length=300, blank=True)
    best_checkpoint = models.CharField(max_length=300, blank=True)
    # The bytes of the checkpoints the row names, for the team's quota (written with them).
    checkpoint_bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    notes = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)

    # A trial of a sweep: the values it was started with, and whether the sweep's early stop (ASHA) ended
    # it after an epoch where it fell behind the others. A pruned run ends `succeeded`, its curve, its
    # checkpoints and the evaluation of its best weights kept.
    sweep = models.ForeignKey("sweeps.Sweep", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    trial_number = models.PositiveIntegerField(null=True, blank=True)
    trial_params = models.JSONField(null=True, blank=True)
    pruned = models.BooleanField(default=False)

    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The tables of the app they were first part of: moving the models changed no data.
        db_table = "experiments_run"
        ordering = ["-created", "-id"]
        indexes = [
            # The full sort key of the lists (-created, -id), so a page is read in index order with no
            # sort of the team's whole history; and the same for "best validation accuracy".
            models.Index(fields=["team", "-created", "-id"], name="run_team_created_id"),
            models.Index(fields=["team", "-best_val_acc", "-id"], name="run_team_best_val_acc_id"),
            # The other sort orders of the history's keyset pages (read backwards for ascending).
            models.Index(fields=["team", "-test_acc", "-id"], name="run_team_test_acc_id"),
            models.Index(fields=["team", "-epochs", "-id"], name="run_team_epochs_id"),
            # The API lists every team of the user at once (team IN (...)): newest first is then read
            # from this one, skipping other teams' rows, instead of sorting all of the user's runs.
            models.Index(fields=["-created", "-id"], name="run_created_id"),
            models.Index(fields=["team", "status"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]
        constraints = [models.UniqueConstraint(fields=["sweep", "trial_number"], name="one_run_per_trial")]

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
    gpu_memory_peak_mb = models.FloatField(null=True, help_text="The most GPU memory its tensors held in the "
                                                                "epoch, MiB; null on a CPU.")
    attempt = models.PositiveSmallIntegerField(default=1, help_text="The attempt of the run that wrote it.")

    class Meta:
        db_table = "experiments_epochmetric"
        ordering = ["run", "epoch"]
        constraints = [models.UniqueConstraint(fields=["run", "epoch"], name="one_metric_per_epoch")]


class Evaluation(models.Model):
    """The best weights' report on the test split (val when there is none), as the engine made it."""

    # What the engine's evaluation holds, and `GET /api/runs/<id>/evaluation` answers with.
    REPORT = ("split", "accuracy", "classes", "confusion", "per_class", "misclassified", "top_k_accuracy")

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="evaluation")
    split = models.CharField(max_length=5)
    accuracy = models.FloatField()
    classes = models.JSONField(default=list)
    confusion = models.JSONField(default=list)
    per_class = models.JSONField(default=list)
    misclassified = models.JSONField(default=list)
    top_k_accuracy = models.JSONField(default=dict, blank=True)
    # The checkpoint it scored (relative to the data dir) and that file's SHA-256.
    checkpoint = models.CharField(max_length=300, blank=True)
    checkpoint_sha256 = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "experiments_evaluation"


class VersionEvaluation(models.Model):
    """A run's best weights scored on another version of its dataset (same classes), on demand: does the
    model hold up on the relabelled, cleaned or grown data? Queued and claimed like an LR range test."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="evaluations")
    dataset = models.ForeignKey("datasets.Dataset", null=True, on_delete=models.SET_NULL, related_name="+")
    # Which data it was scored on, kept when the dataset row is deleted.
    dataset_hash = models.CharField(max_length=64, blank=True)
    dataset_version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    split = models.CharField(max_length=5, blank=True)
    accuracy = models.FloatField(null=True, blank=True)
    classes = models.JSONField(default=list)
    confusion = models.JSONField(default=list)
    per_class = models.JSONField(default=list)
    misclassified = models.JSONField(default=list)
    top_k_accuracy = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "-created"]
        constraints = [models.UniqueConstraint(fields=["run", "dataset"], name="one_evaluation_per_version")]
