"""Each epoch reports the most GPU memory its tensors held (`gpu_memory_peak_mb`), None on a CPU."""
import pytest
import torch

from workers.engine import fit

QUICK = {"epochs": 2, "batch_size": 32, "hidden_units": [32]}


def epochs_of(pack, tmp_path, device):
    epochs = []
    result = fit(pack=pack, config={**QUICK, "device": device}, out_dir=tmp_path, on_epoch=epochs.append)
    assert result.outcome == "completed"
    assert result.history == epochs  # kept in the checkpoints' history too
    return epochs


def test_an_epoch_on_a_cpu_reports_no_gpu_memory(tiny_pack, tmp_path):
    assert [m["gpu_memory_peak_mb"] for m in epochs_of(tiny_pack, tmp_path, "cpu")] == [None, None]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_each_epoch_on_a_gpu_reports_its_own_peak(tiny_pack, tmp_path):
    # 256 MiB held and freed before training: an epoch that counted from before its start would show it.
    held = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    del held
    peaks = [m["gpu_memory_peak_mb"] for m in epochs_of(tiny_pack, tmp_path, "cuda")]
    assert all(isinstance(p, float) and 0 < p < 200 for p in peaks), peaks
