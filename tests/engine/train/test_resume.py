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
# What a second run measures differently: time, and the GPU memory the allocator happened to hold.
TIMING = ("seconds", "images_per_s", "gpu_memory_peak_mb")


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


def test_a_run_resumed_from_files_elsewhere_writes_its_own_and_never_rewrites_one(tiny_pack, tmp_path, uninterrupted):
    # What a claim of the web app does: its own folder, the previous claim's files by name, a file per epoch.
    expected, expected_epochs = uninterrupted
    recorded = []
    first = fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "claim-1", file_per_epoch=True,
                on_checkpoint=lambda metrics, last, best: recorded.append((metrics["epoch"], last, best)),
                on_batch=lambda p: p.epoch == 3 and p.batch == 2)
    assert first.outcome == "stopped" and first.last_checkpoint.endswith("claim-1/last-e2-b2.pt")
    assert [(epoch, last.name) for epoch, last, _ in recorded] == [(1, "last-e1.pt"), (2, "last-e2.pt")]
    assert all(best is None or best.name == f"best-e{epoch}.pt" for epoch, _, best in recorded)
    written = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "claim-1").iterdir()}

    second = fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "claim-2", file_per_epoch=True,
                 resume_from=first.last_checkpoint, best_from=first.checkpoint)
    assert second.outcome == "completed" and without_timing(second.history) == without_timing(expected_epochs)
    assert {path.name: path.stat().st_mtime_ns for path in (tmp_path / "claim-1").iterdir()} == written
    assert second.best_epoch == expected.best_epoch
    assert load_checkpoint(second.checkpoint)["epoch"] == second.best_epoch
    assert_same_weights(second.last_checkpoint, expected.last_checkpoint)


def test_a_best_checkpoint_that_fell_behind_its_record_is_not_taken_for_the_best_epoch(tiny_pack, tmp_path):
    first = fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "a", file_per_epoch=True,
                on_batch=lambda p: p.epoch == 3 and p.batch == 1)
    state = load_checkpoint(first.last_checkpoint)
    assert state["progress"]["best_epoch"] >= 1
    behind = tmp_path / "behind.pt"
    torch.save({**load_checkpoint(first.checkpoint), "epoch": 0}, behind)  # holds no epoch's best weights
    second = fit(pack=tiny_pack, config=CONFIG, out_dir=tmp_path / "b", file_per_epoch=True,
                 resume_from=first.last_checkpoint, best_from=behind)
    assert second.best_epoch is not None and second.best_epoch >= 3
    assert load_checkpoint(second.checkpoint)["epoch"] == second.best_epoch
