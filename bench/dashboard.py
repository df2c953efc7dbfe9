"""Dashboard speed: server time and SQL queries of the run pages and endpoints on a full history.

    .venv/bin/python bench/dashboard.py                          # 10,000 runs x 100 epochs + one of 1,000
    .venv/bin/python bench/dashboard.py --runs 300 --epochs 20   # a smoke run in seconds
    .venv/bin/python bench/dashboard.py --data-dir /tmp/dash    # fill once, keep it; later runs re-measure it
    .venv/bin/python bench/dashboard.py --explain               # also the SQL and query plan of every page
    .venv/bin/python bench/dashboard.py --database-url postgres://...   # a THROW-AWAY PostgreSQL database

Everything happens in a temporary data dir with its own SQLite database (migrated here), so
./var is never touched; with --database-url the tables are created in that database instead, which
must be one you can fill and drop. The history is written with bulk_create in large batches
inside transactions: one team, a user, a ready dataset (rows only, no pack), a few experiments,
--runs runs of --epochs epochs each (a mix of statuses, archs, tags and accuracies, with curves
that look like training: some overfit, some underfit, some healthy) and one run of --long-epochs.
A second team gets a small history (--small-runs runs of --small-epochs) to see whether the
number of SQL queries a page makes grows with the data.

Each page is requested through Django's test Client (logged in with force_login): a few warm-up
requests, then --repeat timed ones; it prints p50 and p95 server time in ms and the SQL queries
of one request. The home page asks Redis for the workers: a private redis-server is started when
one is installed. Prints figures, never asserts. Goal (issue 5): p50 under 150 ms; a query count
that does not grow with the number of runs or epochs.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ["smallcnn", "lenet", "alexnet", "resnet18", "resnet34", "vgg11"]
LONG_RUN_NOTE = "bench: the long run"
TAGS = ["baseline", "augment", "lr-sweep", "dropout", "wd", "paper", "ablation", "final"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10_000, help="runs in the big history (default 10,000)")
    p.add_argument("--epochs", type=int, default=100, help="epochs of each of them (default 100)")
    p.add_argument("--long-epochs", type=int, default=1_000, help="epochs of the one long run (default 1,000)")
    p.add_argument("--small-runs", type=int, default=100, help="runs of the second, small history (default 100)")
    p.add_argument("--small-epochs", type=int, default=10, help="epochs of each of those (default 10)")
    p.add_argument("--repeat", type=int, default=30, help="timed requests per page (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed requests per page first (default 3)")
    p.add_argument("--database-url", help="a throw-away database to fill instead of a temporary SQLite file")
    p.add_argument("--keep", action="store_true", help="keep the temporary data dir (and print where it is)")
    p.add_argument("--data-dir", help="use (and keep) this data dir instead of a temporary one; a database "
                                      "already filled there by an earlier run is measured again, not refilled")
    p.add_argument("--explain", action="store_true", help="print the query plan of every query of each page")
    p.add_argument("--history-runs", type=int, default=0,
                   help="more runs, older than the others and without epoch rows, to reach a history of a "
                        "million: one INSERT ... SELECT FROM generate_series on PostgreSQL, batched inserts on "
                        "SQLite (default 0)")
    p.add_argument("--list-rows", type=int, default=1_000,
                   help="more datasets and as many more experiments in the big team, for their list pages "
                        "(default 1,000)")
    return p.parse_args()


def setup_django(args) -> Path:
    """A private data dir and database, chosen before Django reads its settings."""
    if args.data_dir:
        data_dir = Path(args.data_dir).resolve()
        if data_dir == (ROOT / "var").resolve():
            raise SystemExit("--data-dir must not be ./var: the benchmark fills and keeps its own database")
        data_dir.mkdir(parents=True, exist_ok=True)
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="dlstudio-bench-"))
    os.environ["DLSTUDIO_DATA_DIR"] = str(data_dir)
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ["REDIS_URL"] = start_redis(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dlstudio.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0, interactive=False)
    return data_dir


_redis_process = None


def start_redis(data_dir: Path) -> str:
    """The home page asks Redis for the workers: a private redis-server when there is one, so it
    pays for a real round trip; otherwise a closed port (the page then says "unavailable")."""
    global _redis_process
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("redis-server")
    if exe:
        _redis_process = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                           "--appendonly", "no", "--dir", str(data_dir)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"


# --- Filling --------------------------------------------------------------------------------


def curves(rng: random.Random, epochs: int, *, kind: str, num_classes: int = 10) -> list[dict]:
    """One run's metric rows: exponential learning, val loss that turns up when it overfits,
    an accuracy gap that widens with it, a cosine learning-rate schedule, a little noise."""
    chance = 1 / num_classes
    top = rng.uniform(0.35, 0.45) if kind == "underfit" else rng.uniform(0.80, 0.99)
    speed = rng.uniform(3, 8) if kind != "underfit" else rng.uniform(0.5, 1.5)
    start_loss = math.log(num_classes) * rng.uniform(0.95, 1.1)
    floor = rng.uniform(0.02, 0.3) if kind != "underfit" else rng.uniform(1.3, 1.7)
    onset = rng.uniform(0.25, 0.6)
    lr0 = 10 ** rng.uniform(-4, -1.5)
    seconds = rng.uniform(1.5, 12)
    rows = []
    for e in range(1, epochs + 1):
        t = e / epochs
        learned = 1 - math.exp(-speed * t)
        train_loss = floor + (start_loss - floor) * (1 - learned) + rng.gauss(0, 0.005)
        over = max(0.0, t - onset) if kind == "overfit" else 0.0
        val_loss = train_loss * rng.uniform(1.02, 1.08) + 2.5 * over ** 1.3 + rng.gauss(0, 0.01)
        train_acc = chance + (top - chance) * learned + (0.08 * over if kind == "overfit" else 0.0)
        val_acc = train_acc - 0.01 - 0.5 * over + rng.gauss(0, 0.004)
        rows.append({"epoch": e, "train_loss": max(train_loss, 1e-4), "val_loss": max(val_loss, 1e-4),
                     "train_acc": min(train_acc, 1.0), "val_acc": min(max(val_acc, 0.0), 1.0),
                     "lr": lr0 * 0.5 * (1 + math.cos(math.pi * (e - 1) / epochs)),
                     "seconds": seconds * rng.uniform(0.97, 1.05), "images_per_s": 50_000 / seconds})
    return rows


def fill(*, team, user, dataset, experiments, runs: int, epochs: int, long_epochs: int, seed: int,
         batch: int = 5000) -> dict:
    """runs runs of `epochs` epochs and one of `long_epochs`; returns the ids the pages need."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from apps.experiments.forms import DEFAULTS
    from apps.runs.models import EpochMetric, Evaluation, Run

    rng = random.Random(seed)
    now = timezone.now()
    statuses = (["succeeded"] * 80 + ["failed"] * 8 + ["cancelled"] * 7 + ["running"] * 3 + ["queued"] * 2)
    plans = []  # (Run, kind, epochs of rows)
    for i in range(runs + 1):
        long = i == runs // 2 and long_epochs  # the long run sits in the middle of the history
        n = long_epochs if long else epochs
        status = "succeeded" if long else rng.choice(statuses)
        kind = rng.choice(["healthy", "healthy", "overfit", "overfit", "underfit"])
        arch = rng.choice(ARCHS)
        experiment = rng.choice(experiments)
        config = {**DEFAULTS, "arch": arch, "epochs": n, "lr": round(10 ** rng.uniform(-4, -1.5), 6),
                  "dropout": rng.choice([0.0, 0.2, 0.5]), "batch_size": rng.choice([32, 64, 128, 256])}
        created = now - timedelta(minutes=(runs + 1 - i) * 7)
        # Unfinished runs planned more epochs than they reached: every started run has `n` rows.
        planned = n if status in ("succeeded", "queued") else n * 2
        rows = 0 if status == "queued" else n
        run = Run(experiment=experiment, team=team, dataset=dataset, created_by=user, config=config, arch=arch,
                  status=status, epoch=rows, epochs=planned, progress=rows / planned,
                  tags=rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2, 3])), created=created,
                  device="cuda:0 NVIDIA H100" if status != "queued" else "",
                  worker="gpu0@trainer-1" if status != "queued" else "", code_version="bench",
                  started_at=created + timedelta(seconds=5) if status != "queued" else None,
                  finished_at=created + timedelta(minutes=6) if status in Run.FINISHED_STATUSES else None,
                  error="CUDA out of memory: lower the batch size." if status == "failed" else "",
                  checkpoint_dir="", notes=LONG_RUN_NOTE if long else "")
        plans.append((run, kind, rows))

    created_field = Run._meta.get_field("created")
    created_field.auto_now_add = False  # keep the spread of creation times
    try:
        with transaction.atomic():
            Run.objects.bulk_create([p[0] for p in plans], batch_size=batch)
    finally:
        created_field.auto_now_add = True
    if plans[0][0].pk is None:  # a backend that does not return ids from bulk_create
        ids = list(Run.objects.filter(team=team).order_by("created", "id").values_list("id", flat=True))
        for (run, _, _), pk in zip(plans, ids):
            run.pk = run.id = pk

    pending, written = [], 0
    best = []
    for run, kind, rows in plans:
        if not rows:
            continue
        series = curves(rng, rows, kind=kind)
        top = max(series, key=lambda r: r["val_acc"])
        best.append(Run(pk=run.pk, best_epoch=top["epoch"], best_val_acc=round(top["val_acc"], 4),
                        test_acc=round(top["val_acc"] - rng.uniform(0, 0.02), 4)
                        if run.status == "succeeded" else None))
        run.best_epoch, run.best_val_acc = top["epoch"], top["val_acc"]
        pending += [EpochMetric(run_id=run.pk, **r) for r in series]
        if len(pending) >= 100_000:
            with transaction.atomic():
                EpochMetric.objects.bulk_create(pending, batch_size=batch)
            written += len(pending)
            pending = []
    with transaction.atomic():
        EpochMetric.objects.bulk_create(pending, batch_size=batch)
        written += len(pending)
        Run.objects.bulk_update(best, ["best_epoch", "best_val_acc", "test_acc"], batch_size=500)

    succeeded = [r for r, _, rows in plans if r.status == "succeeded" and rows == epochs]
    long_run = plans[runs // 2][0] if long_epochs else None
    # Evaluations for the runs whose pages are measured (a run page shows its confusion matrix).
    classes = [f"class {c}" for c in range(10)]
    evaluations = []
    for run in [*succeeded[:10], *([long_run] if long_run else [])]:
        confusion = [[90 if i == j else rng.randint(0, 3) for j in range(10)] for i in range(10)]
        evaluations.append(Evaluation(
            run_id=run.pk, split="test", accuracy=0.9, classes=classes, confusion=confusion,
            per_class=[{"class": c, "precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 100} for c in classes],
            misclassified=[{"image": k, "true": classes[k % 10], "predicted": classes[(k + 1) % 10],
                            "confidence": 0.8} for k in range(100)]))
    Evaluation.objects.bulk_create(evaluations)
    return written


HISTORY_OPTIMIZERS = ["adam", "sgd", "adamw"]


def fill_history(*, team, user, dataset, experiments, runs: int, older_than: int, seed: int) -> None:
    """`runs` runs with configs and results but no epoch rows, created 7 minutes apart before the
    `older_than` runs `fill` made. PostgreSQL: one INSERT ... SELECT over generate_series (a million in
    one to two minutes on two cores, the indexes included); elsewhere bulk_create in batches."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from apps.runs.models import Run

    if connection.vendor != "postgresql":
        rng = random.Random(seed)
        now = timezone.now()
        created_field = Run._meta.get_field("created")
        created_field.auto_now_add = False
        try:
            for start in range(0, runs, 10_000):
                batch = []
                for g in range(start + 1, min(start + 10_000, runs) + 1):
                    created = now - timedelta(minutes=(older_than + 1 + g) * 7)
                    done = g % 10 < 9
                    batch.append(Run(
                        experiment=experiments[g % len(experiments)], team=team, dataset=dataset, created_by=user,
                        arch=ARCHS[g % len(ARCHS)], status="succeeded" if done else "failed", epochs=20,
                        epoch=20, progress=1.0, created=created, started_at=created + timedelta(seconds=5),
                        finished_at=created + timedelta(minutes=6), tags=[TAGS[g % len(TAGS)]] if g % 3 else [],
                        config={"arch": ARCHS[g % len(ARCHS)], "lr": round(10 ** rng.uniform(-4, -1.5), 6),
                                "optimizer": HISTORY_OPTIMIZERS[g % 3], "batch_size": [32, 64, 128, 256][g % 4],
                                "epochs": 20, "augment": {"hflip": g % 2 == 0}},
                        best_val_acc=round(rng.uniform(0.39, 0.99), 4),
                        test_acc=round(rng.uniform(0.39, 0.99), 4) if done else None))
                with transaction.atomic():
                    Run.objects.bulk_create(batch, batch_size=5000)
        finally:
            created_field.auto_now_add = True
        return

    given = {
        "experiment_id": "(%(experiments)s::bigint[])[1 + g %% %(k)s]",
        "team_id": "%(team)s", "dataset_id": "%(dataset)s", "created_by_id": "%(user)s",
        "arch": "(%(archs)s::text[])[1 + g %% 6]",
        "config": "jsonb_build_object('arch', (%(archs)s::text[])[1 + g %% 6], "
                  "'lr', round((10 ^ (-4 + random() * 2.5))::numeric, 6), "
                  "'optimizer', (%(optimizers)s::text[])[1 + g %% 3], "
                  "'batch_size', (ARRAY[32, 64, 128, 256])[1 + g %% 4], 'epochs', 20, "
                  "'augment', jsonb_build_object('hflip', g %% 2 = 0))",
        "status": "CASE WHEN g %% 10 < 9 THEN 'succeeded' ELSE 'failed' END",
        "epochs": "20", "epoch": "20", "progress": "1.0",
        "best_val_acc": "round((0.39 + random() * 0.6)::numeric, 4)::float8",
        "test_acc": "CASE WHEN g %% 10 < 9 THEN round((0.39 + random() * 0.6)::numeric, 4)::float8 END",
        "tags": "CASE WHEN g %% 3 = 0 THEN '[]'::jsonb ELSE jsonb_build_array((%(tags)s::text[])[1 + g %% 8]) END",
        "created": "%(now)s::timestamptz - ((%(older)s + 1 + g) * interval '7 minutes')",
        "started_at": "%(now)s::timestamptz - ((%(older)s + 1 + g) * interval '7 minutes') + interval '5 seconds'",
        "finished_at": "%(now)s::timestamptz - ((%(older)s + 1 + g) * interval '7 minutes') + interval '6 minutes'",
    }
    params = {"experiments": [e.pk for e in experiments], "k": len(experiments), "team": team.pk,
              "dataset": dataset.pk, "user": user.pk, "archs": ARCHS, "optimizers": HISTORY_OPTIMIZERS,
              "tags": TAGS, "now": timezone.now(), "older": older_than, "runs": runs}
    columns, values = [], []
    for field in Run._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in given:
            values.append(given[field.attname])
        else:  # the model's default, as Django would have written it
            params[f"d_{field.attname}"] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%(d_{field.attname})s")
    sql = (f"INSERT INTO {Run._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(values)} "
           "FROM generate_series(1, %(runs)s) AS g")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Run._meta.db_table}")


def fill_lists(*, team, user, dataset, rows: int) -> None:
    """`rows` datasets (rows only, ready, no pack) and `rows` experiments on `dataset`, without runs."""
    from apps.datasets.models import Dataset
    from apps.experiments.forms import DEFAULTS
    from apps.experiments.models import Experiment

    Dataset.objects.bulk_create([
        Dataset(team=team, created_by=user, name=f"bench set {i}", status="ready", progress=1.0, num_images=1000,
                image_size=28, channels=1) for i in range(rows)], batch_size=2000)
    Experiment.objects.bulk_create([
        Experiment(team=team, created_by=user, name=f"bench list experiment {i}", dataset=dataset,
                   config={**DEFAULTS, "arch": ARCHS[i % len(ARCHS)]}) for i in range(rows)], batch_size=2000)


def ids_of(team) -> dict:
    """The runs whose pages are measured: a succeeded run with an evaluation, the long run, and the
    first 8 succeeded runs (for compare). Read back from the database, so a kept one can be re-measured."""
    from apps.experiments.models import Experiment
    from apps.runs.models import Run

    runs = Run.objects.filter(team=team, status="succeeded").order_by("id")
    long_run = runs.filter(notes=LONG_RUN_NOTE).first()
    normal = runs.exclude(notes=LONG_RUN_NOTE)
    evaluated = list(normal.filter(evaluation__isnull=False).values_list("id", "epochs"))
    run, epochs = evaluated[len(evaluated) // 2]
    return {"run": run, "epochs": epochs, "long_run": long_run.pk, "long_epochs": long_run.epochs,
            "compare": list(normal.filter(epoch=epochs, epochs=epochs).values_list("id", flat=True)[:8]),
            "middle": _cursor_of(runs.order_by("-created", "-id"), Run.objects.filter(team=team).count() // 2),
            "export_since": _export_since(team),
            "middle_experiment": _cursor_of(Experiment.objects.filter(team=team).order_by("-created", "-id"),
                                            Experiment.objects.filter(team=team).count() // 2)}


def _cursor_of(runs, position: int) -> str:
    """The cursor of a page that starts `position` rows into the history (as a client following `next`
    would hold)."""
    from dlstudio.pagination import _encode

    row = runs.values("created", "id")[position:position + 1][0]
    return _encode(row["created"], row["id"], False)


def _export_since(team) -> str:
    """The creation time after which the team has 10,000 runs: what the export of 10,000 rows searches."""
    from apps.runs.models import Run

    rows = Run.objects.filter(team=team).order_by("-created", "-id").values_list("created", flat=True)
    row = rows[9_999:10_000]
    return row[0].isoformat() if row else "2000-01-01"


def make_team(name: str, username: str, *, experiments: int = 6):
    from django.contrib.auth import get_user_model

    from apps.datasets.models import Dataset, DatasetClass
    from apps.experiments.forms import DEFAULTS
    from apps.experiments.models import Experiment
    from apps.teams.models import Membership, Team

    user = get_user_model().objects.create(username=username)
    user.set_unusable_password()
    user.save()
    # The signal made a personal team; the history lives in a shared one, chosen as the current team.
    team = Team.objects.create(slug=f"{name}-lab", name=f"{name.title()} lab")
    Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
    dataset = Dataset.objects.create(team=team, created_by=user, name=f"{name} digits", status="ready",
                                     progress=1.0, num_images=60_000, image_size=28, channels=1,
                                     options={"val_fraction": 0.2, "test_fraction": 0.1})
    DatasetClass.objects.bulk_create([DatasetClass(dataset=dataset, index=i, name=f"class {i}", train=4200,
                                                   val=1200, test=600) for i in range(10)])
    exps = Experiment.objects.bulk_create([
        Experiment(team=team, created_by=user, name=f"{name} experiment {i}", dataset=dataset,
                   config={**DEFAULTS, "arch": ARCHS[i % len(ARCHS)]}) for i in range(experiments)])
    if exps[0].pk is None:
        exps = list(Experiment.objects.filter(team=team).order_by("id"))
    return team, user, dataset, exps


# --- Measuring ------------------------------------------------------------------------------


def client_for(user, team):
    from django.test import Client

    from apps.teams.middleware import SESSION_KEY

    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_KEY] = team.slug
    session.save()
    return client


def get(client, url):
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}: the benchmark is broken, not slow")
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    return response


def queries_of(client, url, *, explain=False) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        get(client, url)
    sqls = [q["sql"] for q in ctx.captured_queries]
    if explain:
        print(f"\n-- {url}: {len(sqls)} queries")
        for sql in sqls:
            print(f"   {sql[:300]}")
            if sql.lstrip().upper().startswith("SELECT") and connection.vendor == "sqlite":
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN QUERY PLAN " + sql)
                    for row in cursor.fetchall():
                        print(f"      plan: {row[-1]}")
    return sqls


def timed(client, url, *, repeat: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        get(client, url)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        get(client, url)
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def pages(ids: dict) -> list[tuple[str, str]]:
    """(label, url) of every measured request; the labels name the big history's sizes."""
    run, long_run, epochs, long_epochs = ids["run"], ids["long_run"], ids["epochs"], ids["long_epochs"]
    compare = ids["compare"]
    return [
        ("runs list", "/runs/"),
        ("runs list, by best val acc", "/runs/?ordering=-best_val_acc"),
        ("runs list, last page (oldest first)", "/runs/?ordering=created"),
        ("API runs list", "/api/runs"),
        ("API runs, a cursor page mid-history", f"/api/runs?cursor={ids['middle']}"),
        ("API runs, by best val acc", "/api/runs?ordering=-best_val_acc"),
        ("API config search", "/api/runs?" + urlencode({"q": "config.optimizer = adam and config.lr < 0.001"})),
        ("API metric-range search", "/api/runs?" + urlencode({"q": "best_val_acc > 0.9 and best_val_acc < 0.91"})),
        ("runs page, config and metric search", "/runs/?" + urlencode(
            {"q": "config.batch_size = 64 and best_val_acc >= 0.95", "ordering": "-best_val_acc"})),
        ("export 10,000 runs (CSV)", "/api/runs/export.csv?" + urlencode({"q": f"created > {ids['export_since']}"})),
        ("export 10,000 runs (JSON)", "/api/runs/export.json?" + urlencode({"q": f"created > {ids['export_since']}"})),
        ("datasets list", "/datasets/"),
        ("experiments list", "/experiments/"),
        ("API datasets list", "/api/datasets"),
        ("API experiments list", "/api/experiments"),
        ("API experiments, a cursor page mid-list", f"/api/experiments?cursor={ids['middle_experiment']}"),
        (f"run page, {epochs:,}-epoch run", f"/runs/{run}/"),
        (f"run page, {long_epochs:,}-epoch run", f"/runs/{long_run}/"),
        (f"metrics, {long_epochs:,}-epoch run", f"/api/runs/{long_run}/metrics"),
        (f"metrics ?after={long_epochs - 10}, same run", f"/api/runs/{long_run}/metrics?after={long_epochs - 10}"),
        (f"run API, {epochs:,}-epoch run", f"/api/runs/{run}"),
        (f"run API, {long_epochs:,}-epoch run", f"/api/runs/{long_run}"),
        ("compare 2 runs", "/runs/compare?ids=" + ",".join(map(str, compare[:2]))),
        ("compare 8 runs", "/runs/compare?ids=" + ",".join(map(str, compare[:8]))),
        ("home page", "/"),
    ]


def main():
    args = parse_args()
    data_dir = setup_django(args)
    try:
        run_benchmark(args, data_dir)
    finally:
        if _redis_process is not None:
            _redis_process.terminate()
            _redis_process.wait(timeout=10)
        if args.keep or args.data_dir:
            print(f"\nKept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def run_benchmark(args, data_dir: Path):
    import django
    from django.db import connection

    from apps.runs.models import EpochMetric, Run
    from dlstudio.version import code_version

    print(f"dlstudio dashboard benchmark · code {code_version()} · {connection.vendor} "
          f"{connection.Database.sqlite_version if connection.vendor == 'sqlite' else ''} "
          f"· Django {django.__version__}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"data dir {data_dir}")

    from django.contrib.auth import get_user_model

    from apps.teams.models import Team

    if Team.objects.filter(slug="bench-lab").exists():
        print("measuring the history an earlier run left in this data dir (--runs/--epochs do not apply)")
        users = get_user_model().objects
        team, user = Team.objects.get(slug="bench-lab"), users.get(username="bench")
        small_team, small_user = Team.objects.get(slug="small-lab"), users.get(username="small")
    else:
        start = time.perf_counter()
        team, user, dataset, exps = make_team("bench", "bench")
        written = fill(team=team, user=user, dataset=dataset, experiments=exps, runs=args.runs, epochs=args.epochs,
                       long_epochs=args.long_epochs, seed=1)
        big_seconds = time.perf_counter() - start
        if args.history_runs:
            start = time.perf_counter()
            fill_history(team=team, user=user, dataset=dataset, experiments=exps, runs=args.history_runs,
                         older_than=args.runs, seed=3)
            print(f"filled {args.history_runs:,} more runs (no epoch rows) in {time.perf_counter() - start:.1f} s")
        if args.list_rows:
            start = time.perf_counter()
            fill_lists(team=team, user=user, dataset=dataset, rows=args.list_rows)
            print(f"filled {args.list_rows:,} more datasets and experiments in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        small_team, small_user, small_dataset, small_exps = make_team("small", "small")
        fill(team=small_team, user=small_user, dataset=small_dataset, experiments=small_exps,
             runs=args.small_runs, epochs=args.small_epochs, long_epochs=max(args.small_epochs * 2, 20), seed=2)
        small_seconds = time.perf_counter() - start
        print(f"filled {written:,} epoch rows of the big history in {big_seconds:.1f} s "
              f"({written / big_seconds:,.0f} rows/s, runs included); the small history in {small_seconds:.1f} s")
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # the statistics a long-lived database has; the planner uses them
    big, small = ids_of(team), ids_of(small_team)
    print(f"database: {Run.objects.filter(team=team).count():,} + {Run.objects.filter(team=small_team).count():,} "
          f"runs, {EpochMetric.objects.count():,} epoch rows")

    client = client_for(user, team)
    small_client = client_for(small_user, small_team)
    results = []
    for (name, url), (_, small_url) in zip(pages(big), pages(small)):
        times = timed(client, url, repeat=args.repeat, warmup=args.warmup)
        get(small_client, small_url)  # warmed as the big one was (the runs page's count is cached a minute)
        results.append({"name": name, "url": url, "p50": percentile(times, 0.5), "p95": percentile(times, 0.95),
                        "queries": len(queries_of(client, url)), "small": len(queries_of(small_client, small_url))})

    n_big, n_small = Run.objects.filter(team=team).count() - 1, Run.objects.filter(team=small_team).count() - 1
    print(f"\nServer time over {args.repeat} requests after {args.warmup} warm-up ones (test Client, "
          f"force_login); SQL queries of one request, on the big history and (\"small\") on the small one.")
    print(f"Big: {n_big:,} runs x {big['epochs']} epochs + 1 x {big['long_epochs']:,}; small: {n_small} "
          f"runs x {small['epochs']} epochs + 1 x {small['long_epochs']}.\n")
    head = f"| {'page':34} | {'p50 ms':>7} | {'p95 ms':>7} | {'queries':>7} | {'small':>5} | {'p50<150':>7} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in results:
        print(f"| {r['name']:34} | {r['p50']:7.1f} | {r['p95']:7.1f} | {r['queries']:7d} | {r['small']:5d} | "
              f"{'yes' if r['p50'] < 150 else 'NO':>7} |")
    by = {r["name"]: r["queries"] for r in results}
    grows_runs = [r["name"] for r in results if r["queries"] != r["small"]]
    epochs, long_epochs = big["epochs"], big["long_epochs"]
    page, api = (f"run page, {epochs:,}-epoch run", f"run page, {long_epochs:,}-epoch run"), \
        (f"run API, {epochs:,}-epoch run", f"run API, {long_epochs:,}-epoch run")
    grows_epochs = by[page[0]] != by[page[1]] or by[api[0]] != by[api[1]]
    print(f"\nQuery count grows with the number of runs in the history: "
          f"{'YES: ' + ', '.join(grows_runs) if grows_runs else 'no (the same count on the big and the small one)'}")
    print(f"Query count grows with the number of epochs of a run: "
          f"{'YES' if grows_epochs else f'no (a {epochs}-epoch and a {long_epochs:,}-epoch run: the same)'}")
    print(f"Query count grows with the number of compared runs: "
          f"{'YES' if by['compare 2 runs'] != by['compare 8 runs'] else 'no (2 and 8 runs: the same)'}")
    print("Goal (issue 5): p50 under 150 ms on this machine; a query count independent of the number of "
          "runs and epochs.")
    print(f"Every p50 under 150 ms: {'yes' if all(r['p50'] < 150 for r in results) else 'NO'}")
    history = [r for r in results if r["name"].startswith(("runs list", "API runs", "API config", "API metric",
                                                             "runs page", "datasets list", "experiments list",
                                                             "API datasets", "API experiments"))]
    slow = [f"{r['name']} ({r['p50']:.0f} ms)" for r in history if r["p50"] > 50]
    print(f"Goal (run history): every list and search p50 at most 50 ms: "
          f"{'yes' if not slow else 'NO: ' + ', '.join(slow)}")
    if args.explain:
        for name, url in pages(big):
            queries_of(client, url, explain=True)


if __name__ == "__main__":
    main()
