from django.conf import settings
from django.db import models

SPLITS = ("train", "val", "test")


class Dataset(models.Model):
    """A labelled image set, decoded once into a pack. Once `ready` it never changes: a change is a new
    version (a new row whose `parent` it was made from), sharing the parent's pixels (docs/ARCHITECTURE.md)."""

    class Status(models.TextChoices):
        INGESTING = "ingesting", "Ingesting"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="datasets")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="+")
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.INGESTING)
    progress = models.FloatField(default=0.0)
    # Written every few seconds by the worker ingesting it; older than DLSTUDIO_STALE_AFTER means the
    # worker is gone (killed, out of memory) and the reaper fails the dataset (services.datasets_reap).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # How the pack was made: val_fraction, test_fraction, image_size, resize_mode, color, seed.
    options = models.JSONField(default=dict)
    # Paths relative to DLSTUDIO_DATA_DIR (the storage every machine shares).
    upload_path = models.CharField(max_length=300, blank=True)
    upload_name = models.CharField(max_length=300, blank=True, help_text="The archive's name, as text.")
    upload_bytes = models.BigIntegerField(default=0)
    pack_path = models.CharField(max_length=300, blank=True)
    num_images = models.IntegerField(default=0)
    image_size = models.IntegerField(null=True, blank=True)
    channels = models.IntegerField(null=True, blank=True)
    health = models.JSONField(default=dict, blank=True)
    original_sizes = models.JSONField(default=dict, blank=True)
    ingest_seconds = models.FloatField(null=True, blank=True)
    # Versions: 1 for an upload; a version made from `parent` numbers on from the highest of its family
    # (`root`, the first version, null for the first itself).
    version = models.PositiveIntegerField(default=1)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    root = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # What a version changes of its parent: {"exclude": [index], "relabel": {"index": "class"}} (and an
    # added archive in upload_path while it is made).
    changes = models.JSONField(default=dict, blank=True)
    # SHA-256 over the sorted (image hash, class, split) rows: equal data, equal hash. Empty until ready.
    content_hash = models.CharField(max_length=64, blank=True, db_index=True)
    # What it takes on the data disk, for the team's quota: while ingesting, the upload plus the pack it is
    # estimated to make (a reservation); once ready, the pack's own files (a version's segments hard-linked
    # from its parent are counted once, by the parent); 0 once failed.
    bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-created", "-id"]
        # The list's keyset pages seek (created, id) within the team (dlstudio/pagination.py).
        indexes = [models.Index(fields=["team", "-created", "-id"], name="dataset_team_created_id")]

    @property
    def family_id(self) -> int:
        return self.root_id or self.pk

    def __str__(self):
        return self.name

    @property
    def is_ready(self):
        return self.status == self.Status.READY


class DatasetClass(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="classes")
    index = models.IntegerField()
    name = models.CharField(max_length=255)
    train = models.IntegerField(default=0)
    val = models.IntegerField(default=0)
    test = models.IntegerField(default=0)

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [models.UniqueConstraint(fields=["dataset", "index"], name="one_class_per_index")]

    def __str__(self):
        return self.name


class Image(models.Model):
    """One image of a pack: its row in the pack's arrays, where it came from, and its split."""

    class Split(models.IntegerChoices):
        TRAIN = 0, "train"
        VAL = 1, "val"
        TEST = 2, "test"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    index = models.IntegerField(help_text="Row in the pack's arrays.")
    label = models.IntegerField()
    split = models.SmallIntegerField(choices=Split.choices)
    name = models.CharField(max_length=500, help_text="Its name in the archive, as text; never a path.")
    width = models.IntegerField(default=0)
    height = models.IntegerField(default=0)

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [models.UniqueConstraint(fields=["dataset", "index"], name="one_image_per_index")]
        indexes = [models.Index(fields=["dataset", "label", "split", "index"])]
