"""CSV and JSON exports of the run history, streamed: rows are read `CHUNK` at a time from the database and
written a line at a time, so memory does not grow with the history.

Runs: one row per run. Its config's keys (nested keys dotted: `augment.hflip`) become columns; the
union of keys over the matching runs is read in a first pass over their configs alone (still chunked),
because a later run may add a key, and a fixed set would drop it. Then the results.
JSON needs no such pass: each run is one object whose `config` is the run's config as it is.
"""
import csv
import json

from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse

from workers.engine import METRIC_KEYS

from .models import EpochMetric, Run

CHUNK = 2000
MAX_CONFIG_COLUMNS = 500
RUN_COLUMNS = ("id", "experiment", "dataset", "dataset_version", "sweep", "status", "tags", "by", "created")
RESULT_COLUMNS = ("epochs", "epoch", "best_epoch", "best_val_acc", "test_acc", "started_at", "finished_at",
                  "duration_s")
_READ = ("pk", "experiment__name", "dataset__name", "dataset__version", "sweep_id", "status", "tags",
         "created_by__username", "created", "config", "epochs", "epoch", "best_epoch", "best_val_acc", "test_acc",
         "started_at", "finished_at")
# A cell a spreadsheet would run as a formula starts with one of these: such text is written after a quote.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """csv.writer writes into this, which hands the line back."""

    def write(self, text):
        return text


def flatten(config, prefix="") -> dict:
    """{"augment": {"hflip": true}} -> {"augment.hflip": true}; lists stay whole (as JSON text)."""
    out = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        value = json.dumps(value, separators=(",", ":"))
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def config_columns(runs) -> list[str]:
    keys: set[str] = set()
    for config in runs.values_list("config", flat=True).iterator(chunk_size=CHUNK):
        keys.update(flatten(config))
        if len(keys) > MAX_CONFIG_COLUMNS:
            raise ValidationError(f"These runs' configs have more than {MAX_CONFIG_COLUMNS} different keys; narrow "
                                  "the search (q) to export them.", code="q")
    return sorted(keys)


def _runs(runs):
    """(run's columns without config and results, config, results) per run, a chunk at a time."""
    for (pk, experiment, dataset, version, sweep, status, tags, by, created, config, epochs, epoch, best_epoch,
         best_val_acc, test_acc, started, finished) in runs.values_list(*_READ).iterator(chunk_size=CHUNK):
        duration = (finished - started).total_seconds() if started and finished else None
        yield ([pk, experiment, dataset, version, sweep, status, " ".join(tags or []), by, created.isoformat()],
               config, [epochs, epoch, best_epoch, best_val_acc, test_acc,
                        started.isoformat() if started else None, finished.isoformat() if finished else None,
                        duration])


def runs_csv(runs, keys: list[str]):
    """Lines of CSV: a header, then one line per run of `runs` (any queryset of runs, in its order)."""
    writer = csv.writer(_Line())
    yield writer.writerow([*RUN_COLUMNS, *(f"config.{k}" for k in keys), *RESULT_COLUMNS])
    for columns, config, results in _runs(runs):
        flat = flatten(config)
        yield writer.writerow([_cell(v) for v in [*columns, *(flat.get(k) for k in keys), *results]])


def runs_json(runs):
    """A JSON array, a run per piece: the run's columns, `config` as an object, then the results (the
    CSV's columns, with the same names, `tags` a list)."""
    yield "["
    sep = ""
    for columns, config, results in _runs(runs):
        run = dict(zip(RUN_COLUMNS, columns))
        run["tags"] = run["tags"].split() if run["tags"] else []
        run["config"] = config or {}
        run.update(zip(RESULT_COLUMNS, results))
        yield sep + json.dumps(run, separators=(",", ":"))
        sep = ",\n"
    yield "]\n"


def metrics_csv(run: Run):
    writer = csv.writer(_Line())
    yield writer.writerow(METRIC_KEYS)
    rows = EpochMetric.objects.filter(run=run).order_by("epoch").values_list(*METRIC_KEYS)
    for row in rows.iterator(chunk_size=CHUNK):
        yield writer.writerow([_cell(v) for v in row])


def metrics_json(run: Run):
    """A run's epochs as a JSON array of objects (keys: METRIC_KEYS)."""
    yield "["
    sep = ""
    rows = EpochMetric.objects.filter(run=run).order_by("epoch").values_list(*METRIC_KEYS)
    for row in rows.iterator(chunk_size=CHUNK):
        yield sep + json.dumps(dict(zip(METRIC_KEYS, row)), separators=(",", ":"))
        sep = ",\n"
    yield "]\n"


CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def download(chunks, filename: str) -> StreamingHttpResponse:
    """`chunks` streamed as an attachment named `filename`, typed by its extension."""
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[filename.rsplit(".", 1)[1]])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
