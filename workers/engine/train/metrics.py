"""What training reports after every epoch: the keys of one row, in order.

The one schema of the CLI's JSON lines, the `EpochMetric` table's columns and the answer of
`GET /api/runs/<id>/metrics`. Pure Python, so the web app reads it without PyTorch.
"""
METRIC_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s",
               "gpu_memory_peak_mb")  # None on a CPU
