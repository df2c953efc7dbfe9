"""What the machine is doing now: the GPUs (through NVML) and a process tree's CPU and memory (psutil).

Standard library only at import time: `pynvml` (package nvidia-ml-py) and `psutil` are imported on the
first reading, and a reading without them is empty (no GPUs) or null (no CPU and memory figures). So a
worker on a machine without an NVIDIA driver, and a benchmark script that has only PyTorch at hand,
import this module the same way.

Megabytes here are MiB (2**20 bytes), as nvidia-smi and PyTorch count them.
"""
from __future__ import annotations

import os
import threading
from typing import Any

MB = 2**20

_lock = threading.Lock()
_NOT_LOADED = object()
_nvml: Any = _NOT_LOADED  # the initialised pynvml module, None when NVML cannot be used here


def gpu_readings() -> list[dict]:
    """One reading per GPU this process may use: `index` (NVML's, as nvidia-smi numbers the GPUs),
    `name`, `utilization` (percent of the last sample period the GPU was busy), `memory_used_mb`,
    `memory_total_mb`, `temperature_c`. A field the device does not report is None; without NVML (no
    driver, no pynvml, or NVML failing) the list is empty.

    CUDA_VISIBLE_DEVICES is respected, so a worker bound to one GPU reports that GPU: a number in it is
    taken as NVML's index (which is CUDA's numbering when CUDA_DEVICE_ORDER=PCI_BUS_ID, the setting that
    makes binding workers to GPUs by number unambiguous), a `GPU-...` entry as (a prefix of) a device's
    UUID. As CUDA does, the list ends at the first entry that names no device; `MIG-...` instances are
    not resolved to their GPU, so a worker bound to one reports none.
    """
    nvml = _loaded_nvml()
    if nvml is None:
        return []
    try:
        return [_reading(nvml, index) for index in _visible_indices(nvml)]
    except nvml.NVMLError:  # the driver went away, a GPU fell off the bus: nothing to say this round
        return []


def _loaded_nvml():
    """pynvml, initialised once per process; None when that cannot be done here."""
    global _nvml
    with _lock:
        if _nvml is _NOT_LOADED:
            _nvml = _initialised_nvml()
        return _nvml


def _initialised_nvml():
    try:
        import pynvml  # noqa: PLC0415 (optional: a machine without nvidia-ml-py reports no GPU)
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except (pynvml.NVMLError, OSError):  # no driver (NVML library not found), or no GPU it can use
        return None
    return pynvml


def _visible_indices(nvml) -> list[int]:
    count = nvml.nvmlDeviceGetCount()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return list(range(count))
    uuids = None
    chosen: list[int] = []
    for entry in (e.strip() for e in listed.split(",")):
        if entry.isdigit() and int(entry) < count:
            index = int(entry)
        elif entry.startswith("GPU-"):
            if uuids is None:
                uuids = [_text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]
            index = next((i for i, uuid in enumerate(uuids) if uuid.startswith(entry)), None)
            if index is None:
                break
        else:
            break  # "-1", "", a MIG instance or a typo: CUDA sees no device from here on
        if index not in chosen:
            chosen.append(index)
    return chosen


def _reading(nvml, index: int) -> dict:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = _optional(nvml, lambda: _text(nvml.nvmlDeviceGetName(handle)))
    memory = _optional(nvml, lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    return {
        "index": index,
        "name": name,
        "utilization": _optional(nvml, lambda: int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
        "memory_used_mb": round(memory.used / MB) if memory is not None else None,
        "memory_total_mb": round(memory.total / MB) if memory is not None else None,
        "temperature_c": _optional(nvml, lambda: int(nvml.nvmlDeviceGetTemperature(handle,
                                                                                   nvml.NVML_TEMPERATURE_GPU))),
    }


def _optional(nvml, read):
    # Boards differ in what they report (utilisation is not supported under MIG, some have no sensor):
    # a field NVML refuses is unknown, not a reason to drop the GPU.
    try:
        return read()
    except nvml.NVMLError:
        return None


def _text(value) -> str:
    # nvidia-ml-py answers str today; releases before 11.5 answered bytes.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


_samplers: dict[Any, dict] = {}


def process_readings(pid: int | None = None) -> dict:
    """`cpu_percent` and `memory_mb` of a process (this one by default) and all its descendants.

    The tree, because a Celery prefork worker trains and packs in its pool's child processes.
    `cpu_percent` is since the previous reading of the same process (psutil's way; 0.0 the first time)
    in percent of one core, summed over the tree, so it goes past 100 on several cores, as `top`
    shows it. `memory_mb` sums the resident memory of the tree (pages a forked child still shares with
    its parent count twice: an upper bound). Both are None without psutil or when the process is gone.
    """
    try:
        import psutil  # noqa: PLC0415 (optional, as the GPU readings are)
    except ImportError:
        return {"cpu_percent": None, "memory_mb": None}
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {"cpu_percent": None, "memory_mb": None}
    with _lock:
        # cpu_percent compares with the previous call on the same Process object: keep those objects
        # (a Process is known by pid and start time, so a reused pid is a new one), for this tree only.
        previous = _samplers.get(root, {})
        current = {proc: previous.get(proc, proc) for proc in tree}
        _samplers[root] = current
    cpu, resident = 0.0, 0
    for proc in current.values():
        try:
            with proc.oneshot():
                cpu += proc.cpu_percent(None)
                resident += proc.memory_info().rss
        except psutil.Error:  # it ended between the listing and the reading
            continue
    return {"cpu_percent": round(cpu, 1), "memory_mb": round(resident / MB)}
