"""Each epoch reports the most GPU memory its tensors held (`gpu_memory_peak_mb`), None on a CPU; on a GPU,
bench/gpu_check.sh prints the figure."""
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

