"""The machine's readings: GPUs through NVML (a stand-in pynvml with NVML's documented answers where no
GPU exists), the process tree's CPU and memory through psutil."""
import os
import subprocess
from pathlib import Path
import sys
import types

import psutil
import pytest

from tests.support.services import wait_until
from workers.engine import hardware

MiB = 2**20


class NVMLError(Exception):
    pass


class NotSupported(NVMLError):
    pass


def fake_nvml(devices, *, init_error=None, count_error=None):
    """A pynvml as nvidia-ml-py documents it: handles by index, a name (str; bytes before 11.5),
    utilisation rates in percent (.gpu, .memory), memory info in bytes (.total, .free, .used), the
    temperature in °C for NVML_TEMPERATURE_GPU, and NVMLError (NotSupported among its subclasses)."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    nvml.NVML_TEMPERATURE_GPU = 0
    nvml.initialised = 0

    def init():
        if init_error:
            raise init_error
        nvml.initialised += 1

    def count():
        if count_error:
            raise count_error
        return len(devices)

    def answer(handle, key):
        value = devices[handle][key]
        if isinstance(value, Exception):
            raise value
        return value

    def temperature(handle, sensor):
        assert sensor == nvml.NVML_TEMPERATURE_GPU
        return answer(handle, "temperature")

    nvml.nvmlInit = init
    nvml.nvmlDeviceGetCount = count
    nvml.nvmlDeviceGetHandleByIndex = lambda index: index
    nvml.nvmlDeviceGetName = lambda h: answer(h, "name")
    nvml.nvmlDeviceGetUUID = lambda h: answer(h, "uuid")
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=answer(h, "gpu"), memory=7)
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(
        total=answer(h, "total"), used=answer(h, "used"), free=answer(h, "total") - answer(h, "used"))
    nvml.nvmlDeviceGetTemperature = temperature
    return nvml


H200 = {"name": "NVIDIA H200", "uuid": "GPU-aaaa-1111", "gpu": 87, "total": 143771 * MiB, "used": 40960 * MiB + 123,
        "temperature": 41}
A100 = {"name": b"NVIDIA A100-SXM4-80GB", "uuid": "GPU-bbbb-2222", "gpu": 0, "total": 81920 * MiB,
        "used": 3 * MiB, "temperature": 30}


@pytest.fixture
def nvml(monkeypatch):
    """Install a stand-in pynvml; hardware loads it afresh, as a new process would."""
    def install(module):
        monkeypatch.setitem(sys.modules, "pynvml", module)
        monkeypatch.setattr(hardware, "_nvml", hardware._NOT_LOADED)
        return module
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return install


def test_each_gpu_is_read_in_megabytes_with_its_name_as_text(nvml):
    module = nvml(fake_nvml([H200, A100]))
    assert hardware.gpu_readings() == [
        {"index": 0, "name": "NVIDIA H200", "utilization": 87, "memory_used_mb": 40960, "memory_total_mb": 143771,
         "temperature_c": 41},
        {"index": 1, "name": "NVIDIA A100-SXM4-80GB", "utilization": 0, "memory_used_mb": 3,
         "memory_total_mb": 81920, "temperature_c": 30},
    ]
    hardware.gpu_readings()
    assert module.initialised == 1  # NVML is initialised once per process


def test_a_field_the_board_does_not_report_is_unknown_not_fatal(nvml):
    nvml(fake_nvml([{**H200, "temperature": NotSupported(), "gpu": NotSupported()}]))
    [reading] = hardware.gpu_readings()
    assert reading["temperature_c"] is None and reading["utilization"] is None
    assert reading["memory_total_mb"] == 143771


def test_no_driver_no_gpus(nvml):
    nvml(fake_nvml([H200], init_error=NVMLError("NVML Shared Library Not Found")))
    assert hardware.gpu_readings() == []


def test_nvml_failing_later_gives_no_gpus_that_round(nvml):
    nvml(fake_nvml([H200], count_error=NVMLError("GPU is lost")))
    assert hardware.gpu_readings() == []


def test_without_nvidia_ml_py_there_are_no_gpus(nvml):
    nvml(None)  # `import pynvml` raises ImportError
    assert hardware.gpu_readings() == []


@pytest.mark.parametrize("visible, indices", [
    ("1", [1]), ("1,0", [1, 0]), ("GPU-bbbb", [1]), ("0,7,1", [0]), ("", []), ("-1", []), ("MIG-abc", []),
])
def test_a_worker_bound_to_gpus_reports_those(nvml, monkeypatch, visible, indices):
    nvml(fake_nvml([H200, A100]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert [g["index"] for g in hardware.gpu_readings()] == indices


def test_the_real_nvml_here(monkeypatch):
    monkeypatch.setattr(hardware, "_nvml", hardware._NOT_LOADED)
    readings = hardware.gpu_readings()
    if not os.path.exists("/proc/driver/nvidia"):
        assert readings == []
    else:
        assert readings and all(r["memory_total_mb"] > 0 and r["name"] for r in readings)


def test_the_process_tree_counts_its_children(tmp_path):
    # A child that holds 200 MiB and keeps a core busy, as a prefork pool's child does while it trains.
    child = subprocess.Popen([sys.executable, "-c", "x = bytearray(200 * 2**20)\nwhile True: x[0] = 1"])
    try:
        wait_until(lambda: psutil.Process(child.pid).memory_info().rss > 200 * MiB, timeout=20,
                   message="the child to hold its memory")
        own = psutil.Process().memory_info().rss / MiB
        first = hardware.process_readings()
        assert set(first) == {"cpu_percent", "memory_mb"} and isinstance(first["memory_mb"], int)
        assert first["memory_mb"] >= own + 200
        busy = wait_until(lambda: (lambda r: r if r["cpu_percent"] > 20 else None)(hardware.process_readings()),
                          timeout=20, interval=0.5, message="the busy child's CPU to be counted")
        assert isinstance(busy["cpu_percent"], float)
    finally:
        child.kill()
        child.wait()


def test_a_process_that_is_gone_or_no_psutil_reads_as_unknown(monkeypatch):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    assert hardware.process_readings(ended.pid) == {"cpu_percent": None, "memory_mb": None}
    monkeypatch.setitem(sys.modules, "psutil", None)
    assert hardware.process_readings() == {"cpu_percent": None, "memory_mb": None}


def test_importing_needs_nothing_but_the_standard_library():
    # The GPU benchmark imports it where neither Django nor psutil is installed.
    code = ("import sys; sys.modules['psutil'] = None; sys.modules['pynvml'] = None\n"
            "from workers.engine import hardware\n"
            "assert hardware.gpu_readings() == []\n"
            "assert hardware.process_readings() == {'cpu_percent': None, 'memory_mb': None}\n"
            "assert not {'django', 'torch', 'numpy', 'redis'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
