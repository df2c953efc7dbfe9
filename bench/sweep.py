"""Sweeps: a random sweep trained twice with the same seed, without pruning and with ASHA, through the engine.

    .venv/bin/python bench/sweep.py            # 27 trials x 9 epochs, twice (about 12 minutes on 2 cores)
    .venv/bin/python bench/sweep.py --quick    # a smoke run in under a minute
    .venv/bin/python bench/sweep.py --seed 1   # another draw of the 27 trials

The data is MNIST-shaped (28x28 grayscale, 10 classes): scikit-learn's 8x8 digits, each scaled to a
random 16-22 px, placed at a random spot of a 28x28 canvas and given Gaussian noise, written as
`<class>/<image>.png` into a temporary folder and packed with `build_pack` exactly as
`python -m workers.engine train DATA` packs it (val 0.2, test 0.1).

Each arm is a sweep of --trials trials over lr (log-uniform 1e-4..1e-1), optimizer (sgd, rmsprop,
adam) and dropout (uniform 0..0.6), each trial a smallcnn run of --epochs epochs. The parameters come
from the product's own `apps.sweeps.study.next_params` (random, seeded by --seed and the trial's
number, so both arms train the same 27 configs), and the ASHA arm asks the product's
`study.should_prune` after every epoch, as the training job does (`apps/runs/training.py`,
`Tracker.on_checkpoint`; never at the last epoch, as `trial_should_prune` does), with
{"method": "asha", "min_epochs": 1, "reduction_factor": 3}: 9 epochs give rungs at 1 and 3.
`max_parallel: 2` is two worker processes (spawned, one torch thread each), as each of the product's
training workers is its own process, so two trials share the 2 cores. A worker trains one trial at a
time with the engine's `fit`; its `on_checkpoint` sends (trial, epoch, val_acc) to the parent and
waits for the answer. The parent is the coordinator: it draws each trial's parameters, keeps the
sweep's rows (a list of `TrialRecord`s, touched by its one thread only), records the epoch in the
trial's curve before it asks `should_prune`, and sends the answer back (the engine then halts the run
after that epoch). A trial has its process's random generator to itself (`open_session` seeds it,
then builds the model; dropout draws from it), so it trains the same in both arms up to the epoch
where ASHA prunes it.

Prints, never asserts: per arm the trials, how many were pruned, the epochs trained (and their share
of trials x epochs), the wall time, and the best val accuracy with its trial's parameters; then
ASHA's epochs as a fraction of the unpruned arm's and the difference of the two bests in percentage
points, against the goal (at most 40 % of the epochs, within 0.5 points of the unpruned best); and
how far a trial's val accuracy differs between the arms at the epochs both trained (0 when the arms
are comparable trial by trial).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CODE = ("apps/sweeps", "workers/engine", "bench")  # what "+uncommitted" looks at

import numpy as np  # noqa: E402
import torch  # noqa: E402

from apps.sweeps.study import TrialRecord, next_params, rung_steps, should_prune  # noqa: E402
from machine import code_version, device_name  # noqa: E402
from workers.engine import PackOptions, build_pack, fit, resolve_device  # noqa: E402

PARAMETERS = {
    "lr": {"log_uniform": [1e-4, 1e-1]},
    "optimizer": {"values": ["sgd", "rmsprop", "adam"]},
    "dropout": {"uniform": [0.0, 0.6]},
}
ASHA = {"method": "asha", "min_epochs": 1, "reduction_factor": 3}
METRIC = "val_acc"
MAX_PARALLEL = 2
GOAL_EPOCHS = 0.40  # ASHA trains at most this share of the unpruned arm's epochs
GOAL_POINTS = 0.5  # and its best val accuracy is at most this many points below the unpruned best


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=27)
    p.add_argument("--epochs", type=int, default=9, help="epochs of each trial (9 = 3^2: rungs at 1 and 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sweep, of the data and of the split")
    p.add_argument("--images-per-class", type=int, default=170,
                   help="digits per class (at most 174, the smallest class of load_digits)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="a smoke run: 6 trials x 3 epochs, 30 images per class")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (and print where it is)")
    args = p.parse_args()
    if args.quick:
        args.trials, args.epochs, args.images_per_class = 6, 3, 30
    return args


def write_digits(folder: Path, *, per_class: int, seed: int) -> int:
    """load_digits as `<class>/<i>.png`, 28x28 grayscale: each digit scaled, shifted and noised at random."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    written = 0
    for label in range(10):
        (folder / str(label)).mkdir(parents=True)
        for i in np.flatnonzero(digits.target == label)[:per_class]:
            size = int(rng.integers(16, 23))
            glyph = Image.fromarray((digits.images[i] * (255 / 16)).astype(np.uint8), mode="L")
            glyph = np.asarray(glyph.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
            canvas = np.zeros((28, 28), np.float32)
            y, x = rng.integers(0, 28 - size + 1, 2)
            canvas[y:y + size, x:x + size] = glyph
            canvas += rng.normal(0, 25, canvas.shape)
            Image.fromarray(canvas.clip(0, 255).astype(np.uint8), mode="L").save(folder / str(label) / f"{i:04d}.png")
            written += 1
    return written


def train_trials(conn: Connection, pack: str, out: str) -> None:
    """A worker process: trains the trials the parent sends, one at a time, until it sends None."""
    torch.set_num_threads(1)  # two workers share the 2 cores, as two trials at once do
    conn.send("ready")  # after the imports, so that an arm's wall time does not count them
    while (task := conn.recv()) is not None:
        number, config = task

        def on_checkpoint(metrics: dict, *, last, best, number=number) -> bool:
            conn.send(("epoch", number, metrics["epoch"], metrics[METRIC]))
            return conn.recv()  # the parent's answer: prune (halt after this epoch) or go on

        folder = Path(out) / f"trial-{number:03d}"
        started = time.perf_counter()
        try:
            result = fit(pack=pack, config=config, out_dir=folder, on_checkpoint=on_checkpoint)
            outcome, epochs, error = result.outcome, result.epochs_completed, result.error
        except Exception as exc:  # noqa: BLE001  a trial that cannot train is a failed trial, not a dead bench
            outcome, epochs, error = "failed", None, f"{type(exc).__name__}: {exc}"
        shutil.rmtree(folder, ignore_errors=True)
        conn.send(("done", number, outcome, epochs, error, time.perf_counter() - started))


@dataclass
class Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    record: TrialRecord | None = None


def run_arm(*, pack: str, out: Path, args, early_stop: dict | None) -> dict:
    """One sweep: MAX_PARALLEL worker processes; the parent gives each the next trial when it is free."""
    records: list[TrialRecord] = []  # the sweep's rows, as records_of reads them
    results: dict[int, dict] = {}
    numbers = iter(range(args.trials))
    base = {"arch": "smallcnn", "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}
    # Spawned: a forked child of a process that has run torch can hang in its thread pools.
    context = multiprocessing.get_context("spawn")
    workers = []
    for i in range(MAX_PARALLEL):
        parent_end, child_end = context.Pipe()
        process = context.Process(target=train_trials, args=(child_end, pack, str(out)), name=f"trial-worker-{i}",
                                  daemon=True)
        process.start()
        child_end.close()
        workers.append(Worker(process, parent_end))

    def give_next(worker: Worker) -> bool:
        number = next(numbers, None)
        if number is None:
            worker.conn.send(None)
            return False
        # The product draws with the records of every trial so far, finished or not (services._fill).
        params = next_params(PARAMETERS, records, method="random", metric=METRIC, seed=args.seed, number=number)
        worker.record = TrialRecord(number=number, params=params, state="running")
        records.append(worker.record)
        worker.conn.send((number, {**base, **params}))
        return True

    try:
        for worker in workers:
            if worker.conn.recv() != "ready":
                raise RuntimeError(f"{worker.process.name} did not start")
        started = time.perf_counter()
        busy = {worker.conn: worker for worker in workers if give_next(worker)}
        while busy:
            for conn in wait(list(busy)):
                worker = busy[conn]
                try:
                    message = conn.recv()
                except EOFError:
                    raise RuntimeError(f"{worker.process.name} died (exit code {worker.process.exitcode})") from None
                record = worker.record
                if message[0] == "epoch":
                    _, number, epoch, value = message
                    # One thread reads and writes the rows: the epoch is recorded before ASHA is asked.
                    record.curve[epoch] = value
                    conn.send(early_stop is not None and epoch < args.epochs and should_prune(
                        PARAMETERS, records, metric=METRIC, early_stop=early_stop, number=number, epoch=epoch))
                    continue
                _, number, outcome, epochs, error, seconds = message
                record.state = {"halted": "pruned", "completed": "complete",
                                "early_stopped": "complete"}.get(outcome, "failed")
                best = record.value("maximize")
                results[number] = {"params": record.params, "state": record.state,
                                   "epochs": len(record.curve) if epochs is None else epochs, "best": best,
                                   "curve": dict(record.curve), "seconds": seconds, "error": error}
                print(f"  trial {number:2d} {record.state:8s} {results[number]['epochs']} epochs  best val_acc "
                      f"{_pct(best)}  {_params(record.params)}  {seconds:.0f} s"
                      + (f"  ({error})" if error else ""), flush=True)
                if not give_next(worker):
                    del busy[conn]
        wall = time.perf_counter() - started
        for worker in workers:
            worker.process.join(timeout=60)
    finally:
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
    # On a tie the lowest trial number wins, as the product's best_of picks among runs in trial order.
    scored = [(results[n]["best"], n) for n in sorted(results) if results[n]["best"] is not None]
    best_value, best_number = max(scored, key=lambda pair: pair[0]) if scored else (None, None)
    return {"results": results, "wall": wall, "epochs": sum(r["epochs"] for r in results.values()),
            "pruned": sum(r["state"] == "pruned" for r in results.values()),
            "failed": sum(r["state"] == "failed" for r in results.values()),
            "pruned_at": {e: sum(r["state"] == "pruned" and r["epochs"] == e for r in results.values())
                          for e in sorted({r["epochs"] for r in results.values() if r["state"] == "pruned"})},
            "best": best_value, "best_number": best_number}


def report(name: str, arm: dict, budget: int) -> None:
    best = arm["best_number"]
    params = _params(arm["results"][best]["params"]) if best is not None else "-"
    at = ", ".join(f"{n} after epoch {e}" for e, n in arm["pruned_at"].items())
    print(f"{name}: {len(arm['results'])} trials, {arm['pruned']} pruned{f' ({at})' if at else ''}, "
          f"{arm['failed']} failed; "
          f"{arm['epochs']} epochs trained ({arm['epochs'] / budget:.1%} of {budget}); wall {arm['wall']:.0f} s; "
          f"best val_acc {_pct(arm['best'])} (trial {best}: {params})")


def main() -> None:
    args = parse_args()
    device = resolve_device("auto")
    print(f"code {code_version(*CODE)}  torch {torch.__version__}  python {platform.python_version()}  "
          f"cpus {os.cpu_count()}  device {device_name(device)}  {MAX_PARALLEL} worker processes "
          f"(spawned), 1 torch thread each  load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"sweep: {args.trials} trials x {args.epochs} epochs, random, seed {args.seed}, "
          f"parameters {json.dumps(PARAMETERS)}; smallcnn, batch {args.batch_size}; "
          f"ASHA {json.dumps(ASHA)} (rungs at epochs {rung_steps(ASHA, args.epochs)})")
    bench_started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    try:
        images = write_digits(tmp / "digits", per_class=args.images_per_class, seed=args.seed)
        # As `python -m workers.engine train DATA` packs it (cli.run_train, the CLI's defaults).
        options = PackOptions(val_fraction=0.2, test_fraction=0.1, image_size=None, resize_mode="squash",
                              color="auto", seed=args.seed)
        packed = build_pack(str(tmp / "digits"), tmp / "pack", options)
        pack = str(packed.pack_path)
        splits = {split: sum(c[split] for c in packed.counts) for split in ("train", "val", "test")}
        print(f"data: {images} digits, {packed.image_size}x{packed.image_size}x{packed.channels}, "
              f"{len(packed.classes)} classes; split {splits}; packed in {packed.seconds:.1f} s")

        print("arm 1: no pruning")
        plain = run_arm(pack=pack, out=tmp / "plain", args=args, early_stop=None)
        print("arm 2: ASHA")
        asha = run_arm(pack=pack, out=tmp / "asha", args=args, early_stop=ASHA)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    budget = args.trials * args.epochs
    print()
    report("no pruning", plain, budget)
    report("ASHA      ", asha, budget)
    share = asha["epochs"] / plain["epochs"] if plain["epochs"] else float("nan")
    points = (asha["best"] - plain["best"]) * 100 if plain["best"] is not None and asha["best"] is not None \
        else float("nan")
    print(f"ASHA trained {share:.1%} of the unpruned arm's epochs (goal <= {GOAL_EPOCHS:.0%}): "
          f"{'met' if share <= GOAL_EPOCHS else 'NOT met'}")
    print(f"ASHA's best val_acc minus the unpruned best: {points:+.2f} points (goal >= -{GOAL_POINTS}): "
          f"{'met' if points >= -GOAL_POINTS else 'NOT met'}")
    ties = [n for n in sorted(plain["results"]) if plain["results"][n]["best"] == plain["best"]]
    if len(ties) > 1:
        print(f"the unpruned best is shared by trials {', '.join(map(str, ties))}")
    print(f"wall time: ASHA {asha['wall']:.0f} s against {plain['wall']:.0f} s "
          f"({asha['wall'] / plain['wall']:.1%}); whole bench {time.perf_counter() - bench_started:.0f} s")

    # Whether the arms are comparable trial by trial: each trial has its own process, so it should train the
    # same in both arms at every epoch both trained (up to where ASHA pruned it).
    both = [n for n, r in asha["results"].items() if r["state"] == "complete"
            and plain["results"].get(n, {}).get("state") == "complete"]
    if both:
        finals = [abs(asha["results"][n]["curve"][args.epochs] - plain["results"][n]["curve"][args.epochs]) * 100
                  for n in both if args.epochs in asha["results"][n]["curve"]
                  and args.epochs in plain["results"][n]["curve"]]
        print(f"trials complete in both arms: {len(both)}; their final val_acc differs by "
              f"{max(finals, default=float('nan')):.2f} points at most")
    shared = [abs(value - plain["results"][n]["curve"][epoch]) * 100
              for n, r in asha["results"].items() if n in plain["results"]
              for epoch, value in r["curve"].items() if epoch in plain["results"][n]["curve"]]
    print(f"val_acc at the epochs a trial trained in both arms ({len(shared)} epochs of {len(asha['results'])} "
          f"trials): {max(shared, default=float('nan')):.2f} points apart at most")
    ranked = sorted(plain["results"], key=lambda n: plain["results"][n]["best"] or 0, reverse=True)
    where = {n: asha["results"][n]["state"] + f" after {asha['results'][n]['epochs']}" for n in ranked[:5]}
    print("the unpruned arm's top 5 trials, in the ASHA arm: "
          + "; ".join(f"trial {n} ({_pct(plain['results'][n]['best'])}): {where[n]}" for n in ranked[:5]))
    print(json.dumps({
        "trials": args.trials, "epochs": args.epochs, "seed": args.seed, "images_per_class": args.images_per_class,
        "plain": {k: round(v, 4) if isinstance(v, float) else v for k, v in plain.items() if k != "results"},
        "asha": {k: round(v, 4) if isinstance(v, float) else v for k, v in asha.items() if k != "results"},
        "asha_epoch_share": round(share, 4), "best_difference_points": round(points, 3),
        "max_shared_epoch_difference_points": round(max(shared, default=float("nan")), 3),
        "code": code_version(*CODE)}))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _params(params: dict) -> str:
    return f"lr {params['lr']:.2g}, {params['optimizer']}, dropout {params['dropout']:.2f}"


if __name__ == "__main__":
    main()
