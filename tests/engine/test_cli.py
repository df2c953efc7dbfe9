"""The engine's CLI (README, "The engine on its own"), end to end in subprocesses, on a real zip of
scikit-learn's digits."""
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from workers.engine import METRIC_KEYS

ROOT = Path(__file__).resolve().parents[2]
NO_DJANGO = "import sys; assert 'django' not in sys.modules, sorted(m for m in sys.modules if 'django' in m)"


def engine(*args, code=None, timeout=300):
    """`python -m workers.engine ARGS`, or `python -c CODE ARGS` for the checks that need sys.modules."""
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "workers.engine", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TORCH_HOME": "/nonexistent"})


@pytest.fixture(scope="module")
def trained(digits_zip, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    config = folder / "config.json"
    config.write_text(json.dumps({"epochs": 3, "batch_size": 32, "lr": 0.003}))
    done = engine("train", str(digits_zip), "--config", str(config), "--out", str(folder / "run"),
                  "--val-fraction", "0.2", "--test-fraction", "0.2", "--seed", "1")
    assert done.returncode == 0, done.stderr
    return folder, [json.loads(line) for line in done.stdout.splitlines()]


def test_train_prints_one_json_line_per_epoch_then_the_summary(trained):
    folder, lines = trained
    epochs, summary = lines[:-1], lines[-1]
    assert [list(m) for m in epochs] == [list(METRIC_KEYS)] * 3
    assert [m["epoch"] for m in epochs] == [1, 2, 3]
    assert list(summary) == ["best_epoch", "best_val_acc", "test_acc", "checkpoint"]
    assert summary["checkpoint"] == str(folder / "run" / "best.pt") and Path(summary["checkpoint"]).is_file()
    assert summary["test_acc"] > 0.5  # ten classes: chance is 0.1
    assert summary["best_val_acc"] == max(m["val_acc"] for m in epochs)


def test_predict_prints_one_json_line_per_image(trained, digits_zip):
    folder, lines = trained
    images = []
    for digit in (0, 7):
        with zipfile.ZipFile(digits_zip) as archive:
            image = Image.open(io.BytesIO(archive.read(f"{digit}/040.png")))
        images.append(folder / f"digit{digit}.png")
        image.resize((32, 32)).convert("RGB").save(images[-1])
    (folder / "broken.png").write_bytes(b"not an image")
    done = engine("predict", lines[-1]["checkpoint"], *map(str, images), str(folder / "broken.png"),
                  "--top-k", "3")
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["image"] for r in results] == [*map(str, images), str(folder / "broken.png")]
    for result in results[:2]:
        assert len(result["predictions"]) == 3
        assert {p["label"] for p in result["predictions"]} <= {str(d) for d in range(10)}
        assert set(result["predictions"][0]) == {"label", "probability"}
    assert "error" in results[2] and done.returncode == 1


def test_neither_the_package_nor_the_cli_imports_django(trained):
    folder, lines = trained
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "workers" / "engine").rglob("*.py") if p.stem != "__main__"]
    assert "workers.engine.train.loop" in modules and "workers.engine.ingest" in modules
    code = f"import importlib; [importlib.import_module(m) for m in {modules!r}]; {NO_DJANGO}"
    done = engine(code=code)
    assert done.returncode == 0, done.stderr
    image = folder / "digit.png"
    Image.new("L", (8, 8), 128).save(image)
    code = f"from workers.engine.cli import main; rc = main(sys.argv[1:]); {NO_DJANGO}; sys.exit(rc)"
    done = engine("predict", lines[-1]["checkpoint"], str(image), code="import sys; " + code)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["image"] == str(image)


def test_config_validation_does_not_need_torch():
    code = ("import sys; from workers.engine import TrainConfig; TrainConfig.from_dict({'lr': 0.1}); "
            "assert 'torch' not in sys.modules")
    done = engine(code=code)
    assert done.returncode == 0, done.stderr


def test_a_bad_config_is_refused_with_the_field_named(digits_zip, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"optimizer": "lion"}))
    done = engine("train", str(digits_zip), "--config", str(config), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "optimizer must be one of sgd, sgd_nesterov, rmsprop, adam, adamw" in done.stderr
    assert done.stdout == "" and not (tmp_path / "run").exists()
