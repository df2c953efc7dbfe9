import pytest
import torch

from workers.engine import CheckpointError, fit
from workers.engine.train.checkpoint import load_checkpoint

# Randomness everywhere a resume could lose it: shuffling, augmentation, dropout; and a schedule
# and an optimizer whose state matters.
CONFIG = {
    "epochs": 4, "batch_size": 16, "hidden_units": [32], "dropout": 0.5, "optimizer": "sgd", "lr": 0.05,
    "lr_schedule": "cosine", "warmup_epochs": 1, "seed": 3,
    "augment": {"hflip": True, "crop_pad": 1, "rotate": 5, "color_jitter": 0.1},
}
TIMING = ("seconds", "images_per_s")


def without_timing(epochs):
    return [{k: v for k, v in m.items() if k not in TIMING} for m in epochs]


def assert_same_weights(a, b):
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)


@pytest.fixture
def uninterrupted(tiny_pack, tmp_path):
    epochs = []
    result = fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "whole", on_epoch=epochs.append)
    return result, epochs


def test_a_run_stopped_mid_epoch_resumes_exactly(tiny_pack, tmp_path, uninterrupted):
    expected, expected_epochs = uninterrupted
    epochs = []
    first = fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "split", on_epoch=epochs.append,
                on_batch=lambda p: p.epoch == 2 and p.batch == 5)
    assert first.outcome == "stopped" and len(epochs) == 1
    second = fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "split", on_epoch=epochs.append, resume=True)
    assert second.outcome == "completed"
    assert without_timing(epochs) == without_timing(expected_epochs)
    assert without_timing(second.history) == without_timing(expected.history)
    assert second.test_acc == expected.test_acc
    assert_same_weights(second.last_checkpoint, expected.last_checkpoint)


def test_a_run_that_crashed_resumes_from_the_last_epoch_exactly(tiny_pack, tmp_path, uninterrupted):
    expected, expected_epochs = uninterrupted
    epochs = []

    def crash(progress):
        if progress.epoch == 3 and progress.batch == 2:
            raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "crash", on_epoch=epochs.append, on_batch=crash)
    assert load_checkpoint(tmp_path / "crash" / "last.pt")["epoch"] == 2
    fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "crash", on_epoch=epochs.append, resume=True)
    assert without_timing(epochs) == without_timing(expected_epochs)
    assert_same_weights(tmp_path / "crash" / "best.pt", expected.checkpoint)


def test_streaming_from_the_memory_map_gives_the_same_run_as_a_resident_pack(tiny_pack, tmp_path, uninterrupted):
    expected, expected_epochs = uninterrupted
    epochs = []
    streamed = fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "stream", on_epoch=epochs.append,
                   resident=False)
    assert without_timing(epochs) == without_timing(expected_epochs)
    assert streamed.evaluation == expected.evaluation


def test_resume_refuses_a_checkpoint_of_another_config(tiny_pack, tmp_path):
    fit(pack=tiny_pack, config={**CONFIG, "epochs": 2}, out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="different config"):
        fit(pack=tiny_pack, config={**CONFIG, "epochs": 2, "lr": 0.1}, out_dir=tmp_path, resume=True)


def test_resume_without_a_checkpoint_starts_from_scratch(tiny_pack, tmp_path, uninterrupted):
    expected, _ = uninterrupted
    result = fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "fresh", resume=True)
    assert without_timing(result.history) == without_timing(expected.history)
