from django.conf import settings
from django.db import models


class WeightsFile(models.Model):
    """A team's uploaded starting weights (a state dict, `.pth` or `.safetensors`), checked on upload
    to be plain tensors that fit `arch`. Used for `pretrained: "imagenet"` instead of the local cache."""

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="weights_files")
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
        # The table of the app it was first part of: moving the model changed no data.
        db_table = "experiments_weightsfile"
        ordering = ["-created", "-id"]

    def __str__(self):
        return self.name
