import math

import pytest
import torch

from workers.engine import METRIC_KEYS, build_model, fit
from workers.engine.train.checkpoint import load_checkpoint
from workers.engine.train.config import TrainConfig
from workers.engine.train.loop import RunProgress
from workers.engine.train.session import resolve_device, use_amp

QUICK = {"epochs": 2, "batch_size": 32, "hidden_units": [32]}


def run(pack, tmp_path, name="out", **config):
    epochs = []
    result = fit(pack=pack, config={**QUICK, **config}, out_dir=tmp_path / name, on_epoch=epochs.append)
    return result, epochs


def test_fit_learns_and_reports_the_metrics_of_the_api(tiny_pack, tmp_path):
    result, epochs = run(tiny_pack, tmp_path, epochs=3)
    assert result.outcome == "completed" and result.error is None
    assert [list(m) for m in epochs] == [list(METRIC_KEYS)] * 3
    assert [m["epoch"] for m in epochs] == [1, 2, 3]
    assert epochs[-1]["val_acc"] >= 0.9 and epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert all(m["seconds"] > 0 and m["images_per_s"] > 0 and m["lr"] == 0.001 for m in epochs)
    assert result.history == epochs
    assert result.best_val_acc == max(m["val_acc"] for m in epochs)
    assert result.test_acc == result.evaluation["accuracy"] >= 0.9
    assert result.evaluation["split"] == "test"
    assert (tmp_path / "out" / "last.pt").is_file() and result.checkpoint == str(tmp_path / "out" / "best.pt")
    assert load_checkpoint(result.last_checkpoint)["epoch"] == 3
    assert load_checkpoint(result.checkpoint)["epoch"] == result.best_epoch


def test_build_model_is_the_network_fit_trains(tiny_pack, tmp_path):
    config = {**QUICK, "epochs": 1, "arch": "lenet5", "hidden_units": [16, 8]}
    result = fit(pack=tiny_pack, config=config, out_dir=tmp_path)
    weights = load_checkpoint(result.checkpoint)["model"]
    built = build_model(config, num_classes=3, channels=1, image_size=12).state_dict()
    assert {k: v.shape for k, v in weights.items()} == {k: v.shape for k, v in built.items()}


@pytest.mark.parametrize("optimizer", ["sgd", "sgd_nesterov", "rmsprop", "adam", "adamw"])
def test_every_optimizer_trains(tiny_pack, tmp_path, optimizer):
    lr = 0.05 if optimizer.startswith("sgd") else 0.002
    result, epochs = run(tiny_pack, tmp_path, optimizer=optimizer, lr=lr, weight_decay=1e-4, epochs=3)
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["val_acc"] >= 0.8


@pytest.mark.parametrize("overrides, rates", [
    ({"lr_schedule": "step", "step_size": 1, "gamma": 0.5}, [0.01, 0.005, 0.0025]),
    ({"lr_schedule": "constant", "warmup_epochs": 1}, [0.01, 0.01, 0.01]),
    ({"lr_schedule": "cosine"}, "falling"),
    ({"lr_schedule": "onecycle"}, "falling"),
    ({"lr_schedule": "plateau"}, [0.01, 0.01, 0.01]),
])
def test_every_schedule_sets_the_reported_rate(tiny_pack, tmp_path, overrides, rates):
    result, epochs = run(tiny_pack, tmp_path, lr=0.01, epochs=3, **overrides)
    reported = [m["lr"] for m in epochs]
    if rates == "falling":
        assert reported[0] > reported[1] > reported[2] > 0
    else:
        assert reported == pytest.approx(rates)
    assert result.outcome == "completed"


def test_label_smoothing_keeps_the_loss_above_the_smoothed_target_entropy(tiny_pack, tmp_path):
    _, plain = run(tiny_pack, tmp_path, "plain", epochs=3)
    _, smoothed = run(tiny_pack, tmp_path, "smooth", epochs=3, label_smoothing=0.4)
    # With 3 classes and 0.4 smoothing the target is (0.733, 0.133, 0.133): entropy 0.765.
    assert smoothed[-1]["train_loss"] > 0.76
    assert plain[-1]["train_loss"] < 0.5


def test_early_stopping_ends_the_run_after_patience_epochs(tiny_pack, tmp_path):
    result, epochs = run(tiny_pack, tmp_path, epochs=10, early_stopping={"patience": 1, "monitor": "val_acc"})
    assert epochs[0]["val_acc"] == 1.0  # nothing can beat it, so the next epoch ends the run
    assert result.outcome == "early_stopped" and len(epochs) == 2 and result.epochs_completed == 2
    assert result.best_epoch == 1 and result.test_acc is not None


def test_on_checkpoint_returning_true_halts_after_that_epoch_and_evaluates_the_best(tiny_pack, tmp_path):
    recorded = []

    def on_checkpoint(metrics, *, last, best):
        recorded.append(metrics["epoch"])
        return metrics["epoch"] == 2  # a sweep pruned the run at its second epoch

    result = fit(pack=tiny_pack, config={**QUICK, "epochs": 5}, out_dir=tmp_path, on_checkpoint=on_checkpoint)
    assert recorded == [1, 2]
    assert result.outcome == "halted" and result.epochs_completed == 2
    assert result.evaluation is not None and result.test_acc is not None


def test_a_halted_run_resumed_with_halt_after_ends_at_once_with_its_evaluation(tiny_pack, tmp_path):
    first = fit(pack=tiny_pack, config={**QUICK, "epochs": 5}, out_dir=tmp_path,
                on_checkpoint=lambda metrics, **files: metrics["epoch"] == 1)
    epochs = []
    again = fit(pack=tiny_pack, config={**QUICK, "epochs": 5}, out_dir=tmp_path, on_epoch=epochs.append,
                resume_from=first.last_checkpoint, best_from=first.checkpoint, halt_after=1)
    assert epochs == [] and again.outcome == "halted" and again.epochs_completed == 1
    assert again.evaluation["accuracy"] == first.evaluation["accuracy"]


def test_on_batch_reports_progress_and_can_stop_the_run(tiny_pack, tmp_path):
    seen = []

    def on_batch(progress):
        seen.append(progress)
        return progress.epoch == 2 and progress.batch == 2

    result = fit(pack=tiny_pack, config={**QUICK, "epochs": 3}, out_dir=tmp_path, on_batch=on_batch)
    batches = seen[0].batches
    assert batches == len(tiny_pack.indices("train")) // 32
    assert [(p.epoch, p.batch) for p in seen] == [(1, b) for b in range(1, batches + 1)] + [(2, 1), (2, 2)]
    assert seen[-1].fraction == pytest.approx((batches + 2) / (3 * batches))
    assert result.outcome == "stopped" and result.epochs_completed == 1
    last = load_checkpoint(result.last_checkpoint)
    assert (last["epoch"], last["progress"]["batch"]) == (1, 2)
    assert result.checkpoint is not None and result.evaluation is None


def test_nan_loss_stops_the_run_with_advice(tiny_pack, tmp_path):
    result, epochs = run(tiny_pack, tmp_path, optimizer="sgd", lr=1e6, batch_norm=False)
    assert result.outcome == "failed"
    assert result.error == "loss became NaN at epoch 1; lower the learning rate"
    assert epochs == [] and result.checkpoint is None


@pytest.mark.parametrize("overrides", [
    {"normalize": "scale", "equalize": True, "amp": "off", "device": "cpu", "init": "xavier"},
    {"normalize": "mean_image", "init": "kaiming", "dropout": 0, "batch_norm": False,
     "augment": {"hflip": True, "vflip": True, "crop_pad": 2, "zoom": 0.1, "rotate": 10, "color_jitter": 0.2}},
])
def test_preprocessing_and_augmentation_settings_train_and_are_saved(tiny_pack, tmp_path, overrides):
    # Uncentred inputs (scale) leave batch-norm's running statistics behind for a few dozen steps.
    overrides = {**overrides, "epochs": 6, "batch_size": 16}
    result, epochs = run(tiny_pack, tmp_path, **overrides)
    assert epochs[-1]["val_acc"] >= 0.8
    saved = load_checkpoint(result.checkpoint)
    assert saved["config"] == TrainConfig.from_dict({**QUICK, **overrides}).to_dict()
    pre = saved["preprocessing"]
    assert pre["normalize"] == overrides["normalize"] and pre["equalize"] == overrides.get("equalize", False)
    assert (pre["image_size"], pre["channels"], pre["classes"]) == (12, 1, tiny_pack.classes)
    assert pre["mean_image"].shape == (12, 12, 1) and len(pre["mean"]) == len(pre["std"]) == 1


def test_without_a_val_split_the_best_epoch_has_the_lowest_train_loss(make_pack, tmp_path):
    pack = make_pack(split_p=(0.8, 0.0, 0.2))
    result, epochs = run(pack, tmp_path, epochs=3)
    assert all(m["val_loss"] is None and m["val_acc"] is None for m in epochs)
    losses = [m["train_loss"] for m in epochs]
    assert result.best_epoch == losses.index(min(losses)) + 1 and result.best_val_acc is None
    assert result.evaluation["split"] == "test"


def test_cpu_never_uses_autocast_and_a_missing_gpu_is_a_clear_error():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert not use_amp(TrainConfig(), torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no usable CUDA GPU"):
            resolve_device("cuda")


def test_loss_is_reported_as_a_plain_float(tiny_pack, tmp_path):
    _, epochs = run(tiny_pack, tmp_path, epochs=1)
    assert all(isinstance(epochs[0][k], float) and math.isfinite(epochs[0][k])
               for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"))


def test_early_stopping_on_val_loss_counts_epochs_without_a_lower_loss():
    progress = RunProgress()
    losses = [1.0, 0.8, 0.85, 0.79, 0.9, 0.95]
    bad = []
    for epoch, loss in enumerate(losses, start=1):
        progress.record({"epoch": epoch, "train_loss": 1.0, "val_loss": loss, "val_acc": 1 - loss},
                        monitor="val_loss")
        bad.append(progress.bad_epochs)
    assert bad == [0, 0, 1, 0, 1, 2]
    assert progress.best_epoch == 4 and progress.best_val_acc == pytest.approx(0.21)
