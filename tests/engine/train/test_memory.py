"""The memory estimate of a run: its formula on a network of known size, and held against the peak RSS of
real training steps in a fresh process (docs of workers/engine/train/memory.py)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from workers.engine.train.config import TrainConfig
from workers.engine.train.memory import estimate_run_bytes, too_big_sentence

ROOT = Path(__file__).resolve().parents[3]

# Training steps of the engine's own network and optimizer on random images, in a process of their own:
# its peak RSS is reset (clear_refs 5) once torch is imported and the batch made, so what it measures is
# what the estimate counts (weights, gradients, optimizer state, activations).
MEASURE = """
import json, sys, torch
from workers.engine.train.config import TrainConfig
from workers.engine.train.models import build_model
from workers.engine.train.optim import build_optimizer
torch.set_num_threads(1)
config = TrainConfig.from_dict(json.loads(sys.argv[1])); channels, size = int(sys.argv[2]), int(sys.argv[3])
x, y = torch.rand(config.batch_size, channels, size, size), torch.randint(0, 10, (config.batch_size,))
def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
model = build_model(config, num_classes=10, channels=channels, image_size=size)
optimizer = build_optimizer(model, config)
model.train()
for _ in range(3):
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
print(status("VmHWM:") - before)
"""


@pytest.mark.parametrize("config,channels,size", [
    ({"batch_size": 64}, 3, 32),  # activations weigh most
    ({"hidden_units": [4096, 4096], "batch_size": 32}, 3, 32),  # weights and Adam's state weigh most
    ({"arch": "resnet18", "batch_size": 32}, 3, 64),
])
def test_the_estimate_is_within_a_factor_of_three_of_the_measured_peak(config, channels, size):
    measured = int(subprocess.run([sys.executable, "-c", MEASURE, json.dumps(config), str(channels), str(size)],
                                  cwd=ROOT, capture_output=True, text=True, check=True, timeout=300).stdout)
    estimate = estimate_run_bytes(config, num_classes=10, channels=channels, image_size=size).total_bytes
    assert 0.3 * estimate <= measured <= 3 * estimate, (measured, estimate)


@pytest.mark.parametrize("optimizer,momentum,numbers", [
    ("adam", 0.9, 4), ("adamw", 0.9, 4), ("sgd", 0.9, 3), ("sgd", 0.0, 2), ("rmsprop", 0.0, 3), ("rmsprop", 0.9, 4),
])
def test_weights_gradients_and_optimizer_state_per_parameter(optimizer, momentum, numbers):
    memory = estimate_run_bytes({"optimizer": optimizer, "momentum": momentum, "hidden_units": [64]},
                                num_classes=10, channels=1, image_size=28)
    assert memory.weights_bytes == 4 * numbers * memory.params


def test_a_head_of_eight_times_65536_units_needs_hundreds_of_gigabytes_at_no_cost():
    config = TrainConfig.from_dict({"hidden_units": [65536] * 8, "batch_size": 512})
    memory = estimate_run_bytes(config, num_classes=10, channels=3, image_size=224)
    assert memory.params > 30 * 10**9 and memory.weights_bytes == 16 * memory.params
    assert memory.gigabytes > 450
    text = too_big_sentence(config, memory, limit_gb=20, setting="DLSTUDIO_MAX_RUN_GB")
    assert text.startswith("This config needs about 539 GB to train: 30.2 billion parameters (smallcnn with "
                           "hidden_units [65536] x 8), with their gradients and adam's state, take 483 GB, and "
                           "batch_size 512 at 224 px takes 56 GB of activations; the limit is 20 GB "
                           "(DLSTUDIO_MAX_RUN_GB). Lower hidden_units")


def test_activations_grow_with_batch_size_and_image_size():
    small = estimate_run_bytes({"batch_size": 32}, num_classes=10, channels=3, image_size=32)
    double_batch = estimate_run_bytes({"batch_size": 64}, num_classes=10, channels=3, image_size=32)
    double_side = estimate_run_bytes({"batch_size": 32}, num_classes=10, channels=3, image_size=64)
    assert double_batch.activation_bytes == pytest.approx(2 * small.activation_bytes, rel=0.01)
    assert double_side.activation_bytes > 3 * small.activation_bytes
