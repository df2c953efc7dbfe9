import pickle
from pathlib import Path

import pytest
import torch

from workers.engine import CheckpointError, Predictor, fit
from workers.engine.train.checkpoint import FORMAT, load_checkpoint, save_checkpoint


class Payload:
    """What an attacker would put in a checkpoint: unpickling it runs code (here: touches a file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_holds_everything_needed_to_resume_and_to_predict(tiny_pack, tmp_path):
    result = fit(pack=tiny_pack, config={"epochs": 1, "batch_size": 32}, out_dir=tmp_path)
    state = load_checkpoint(result.last_checkpoint)
    assert {"model", "optimizer", "scheduler", "epoch", "rng", "config", "classes", "preprocessing",
            "progress", "partial"} <= set(state)
    assert state["classes"] == ["top", "left", "centre"] and state["config"]["batch_size"] == 32
    assert set(state["preprocessing"]) == {"image_size", "resize_mode", "channels", "normalize", "mean", "std",
                                           "mean_image", "equalize", "classes"}
    assert set(state["rng"]) >= {"torch", "augment"}
    # Only what the restricted unpickler knows: the file loads with weights_only=True as it is.
    assert torch.load(result.last_checkpoint, weights_only=True)["format"] == FORMAT


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": 1, "model": {}, "extra": Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError):
        Predictor.from_checkpoint(evil)
    assert not marker.exists()
    # The same file loaded without the restriction would have run the payload: the test is real.
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_a_starting_checkpoint_with_a_payload_is_refused_too(tiny_pack, tmp_path):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"format": FORMAT, "x": Payload(marker)}, f)
    with pytest.raises(CheckpointError):
        fit(pack=tiny_pack, config={"epochs": 1, "pretrained": {"run": 1}}, out_dir=tmp_path / "out",
            init_checkpoint=evil)
    assert not marker.exists()


def test_saving_is_atomic(tmp_path, monkeypatch):
    path = save_checkpoint({"epoch": 1}, tmp_path / "last.pt")
    assert load_checkpoint(path)["epoch"] == 1

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1  # the previous file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # and no temporary file is left


def test_files_that_are_not_checkpoints_are_refused_with_a_sentence(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt is not plain weights"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a dlstudio checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
