"""`python -m workers.engine train|predict`: the engine without the web app (README, "The engine on
its own").

stdout carries only JSON lines (one per epoch, then a summary; or one per predicted image), so
the output can be piped into other tools; messages for a person go to stderr.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, ImageError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.engine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="pack DATA and train on it")
    train.add_argument("data", help="a zip, a tar or a folder: <class>/<image> or {train,val,test}/<class>/<image>")
    train.add_argument("--config", help="a JSON file with the training config (every key optional; docs/CONFIG.md)")
    train.add_argument("--out", required=True, help="folder for the pack and the checkpoints")
    train.add_argument("--val-fraction", type=float, default=0.2)
    train.add_argument("--test-fraction", type=float, default=0.1)
    train.add_argument("--image-size", type=int, default=None)
    train.add_argument("--resize-mode", default="squash", choices=("squash", "crop", "fill"))
    train.add_argument("--color", default="auto", choices=("auto", "grayscale", "rgb"))
    train.add_argument("--seed", type=int, default=0, help="seed of the split")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")

    predict = commands.add_parser("predict", help="classify images with a checkpoint")
    predict.add_argument("checkpoint")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--top-k", type=int, default=5)
    predict.add_argument("--device", default="cpu")

    args = parser.parse_args(argv)
    return run_train(args) if args.command == "train" else run_predict(args)


def run_train(args: argparse.Namespace) -> int:
    # Each command imports what it runs, no more: `predict` starts without the ingest and the loop.
    from .ingest.pipeline import PackOptions, build_pack  # noqa: PLC0415
    from .train.config import TrainConfig  # noqa: PLC0415
    from .train.loop import fit  # noqa: PLC0415

    try:
        config = TrainConfig.from_dict(json.loads(Path(args.config).read_text()) if args.config else {})
    except ConfigError as exc:
        return _fail(f"config: {exc.message}", code=2)
    except (OSError, json.JSONDecodeError) as exc:
        return _fail(f"cannot read the config file {args.config}: {exc}", code=2)

    out = Path(args.out)
    pack_dir = out / "pack"
    if (pack_dir / "meta.json").is_file():
        if not args.resume:
            return _fail(f"{out} already holds a run; pass --resume to continue it or choose another --out", code=2)
    else:
        out.mkdir(parents=True, exist_ok=True)
        options = PackOptions(val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                              image_size=args.image_size, resize_mode=args.resize_mode, color=args.color,
                              seed=args.seed)
        print(f"packing {args.data} ...", file=sys.stderr, flush=True)
        try:
            pack_dir = Path(build_pack(args.data, pack_dir, options).pack_path)
        except (ValueError, OSError) as exc:  # the packer's errors are sentences for a person
            return _fail(str(exc), code=1)

    # The first Ctrl-C asks the loop to stop at the next batch and write a checkpoint (--resume
    # continues from it); a second one interrupts at once.
    stop = {"asked": False}

    def ask_to_stop(signum: int, frame: Any) -> None:
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        print("stopping after this batch; Ctrl-C again to abort", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, ask_to_stop)
    try:
        result = fit(pack=pack_dir, config=config, out_dir=out, resume=args.resume,
                     on_epoch=lambda metrics: _emit(metrics), on_batch=lambda progress: stop["asked"])
    except (ValueError, OSError) as exc:  # missing weights, a foreign checkpoint, an unusable pack
        return _fail(str(exc), code=1)
    finally:
        signal.signal(signal.SIGINT, previous)
    summary = result.summary()
    if result.error:
        summary["error"] = result.error
    _emit(summary)
    if result.outcome == "failed":
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    return 130 if result.outcome == "stopped" else 0


def run_predict(args: argparse.Namespace) -> int:
    from .serve.predictor import Predictor  # noqa: PLC0415

    try:
        predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device)
    except (ValueError, OSError) as exc:  # a missing, damaged or hostile checkpoint: refused unread
        return _fail(str(exc), code=2)
    failures = 0
    for name in args.images:
        try:
            predictions = predictor.predict(Path(name).read_bytes(), top_k=args.top_k)
        except (OSError, ImageError) as exc:
            failures += 1
            _emit({"image": name, "error": str(exc)})
            continue
        _emit({"image": name, "predictions": predictions})
    return 1 if failures else 0


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _fail(message: str, *, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
