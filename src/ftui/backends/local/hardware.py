"""What the local backend asks torch about the hardware: the device, bf16 on it, the training
precision; and the ``hw`` event sampler. Every torch-free fact comes from ``core/machine.py``."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from ftui.core import machine
from ftui.core.machine import HwReading


@dataclass(frozen=True)
class Hardware:
    device: str
    """``cuda`` or ``cpu``."""
    gpu_name: str | None
    gpu_count: int
    gpu_mem_total: int | None
    """Bytes on the first GPU."""
    bf16: bool
    """bf16 is fast here: a CUDA GPU with bf16, or a CPU with AVX512-bf16 or AMX."""
    cpu_count: int
    ram_total: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect() -> Hardware:
    import torch  # heavy: the device torch will train on

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", props.name, torch.cuda.device_count(), props.total_memory,
                        torch.cuda.is_bf16_supported(), machine.cpu_count(), machine.ram_total())
    return Hardware("cpu", None, 0, None, machine.cpu_bf16(), machine.cpu_count(), machine.ram_total())


def apply_threads() -> int:
    """Set torch's compute threads to what the runner chose for this process (``OMP_NUM_THREADS``:
    the cores the run is entitled to, ``core.devices``) rather than torch's default of one per
    core in every process; returns the count in use."""
    import os

    import torch  # heavy: the library whose threads these are

    wanted = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if wanted > 0 and torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


def precision(hw: Hardware, requested: str = "auto") -> str:
    """``bfloat16`` where the hardware runs it fast, else ``float32`` (or what was asked)."""
    if requested in ("bf16", "bfloat16"):
        return "bfloat16"
    if requested in ("fp32", "float32"):
        return "float32"
    return "bfloat16" if hw.bf16 else "float32"


class Sampler:
    """Readings for ``hw`` events: GPUs through NVML when available (else torch's memory
    counters for the first one), CPU and this process."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._proc.cpu_percent(None)
        self._nvml = machine.NvmlGpus.open()

    def reading(self) -> HwReading:
        import psutil

        import torch  # loaded already by training

        fields: dict[str, Any] = {"cpu_percent": psutil.cpu_percent(None), "rss_bytes": self._proc.memory_info().rss,
                                  "ram_total_bytes": psutil.virtual_memory().total,
                                  "threads": torch.get_num_threads()}
        gpus = self._nvml.read() if self._nvml is not None else ()
        if gpus:
            return HwReading.of(gpus, **fields)
        if self._nvml is None and torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            return HwReading(gpu_name=torch.cuda.get_device_name(), gpu_mem_used=total - free,
                             gpu_mem_total=total, **fields)
        return HwReading(**fields)

    def sample(self) -> dict[str, Any]:
        """The ``hw`` event's fields."""
        return self.reading().to_event()


class MethodSampler:
    """Adds the method, its parameter counts and the process's peak memory (``peak_mem_bytes``)
    and peak resident set (``peak_rss``) to each hw reading."""

    def __init__(self, inner: Any, *, method: str, trainable: int, total: int, device: str) -> None:
        self.inner, self.device = inner, device
        # Processes training together (torchrun's WORLD_SIZE, over every node): the devices
        # whose peak a model-FLOPs utilisation divides by.
        self.facts = {"method": method, "trainable_params": trainable, "total_params": total,
                      "processes": int(os.environ.get("WORLD_SIZE", "1"))}

    def sample(self) -> dict[str, Any]:
        out = dict(self.inner.sample())
        if not out:  # a process that writes no events (rank > 0)
            return out
        # The kernel's high-water mark trails the resident set by a few pages (its counters are
        # synced lazily): a peak is at least the resident set read a moment ago.
        rss = max((n for n in (peak_rss_bytes(), out.get("rss_bytes")) if n), default=None)
        peak = rss if self.device != "cuda" else peak_memory_bytes(self.device)
        return {**out, **self.facts, **({"peak_mem_bytes": peak} if peak else {}),
                **({"peak_rss": rss} if rss else {})}


def peak_memory_bytes(device: str) -> int | None:
    """The most memory this process has held: CUDA memory allocated on a GPU, else peak RSS."""
    if device == "cuda":
        import torch  # heavy: training only

        return int(torch.cuda.max_memory_allocated())
    return peak_rss_bytes()


def peak_rss_bytes() -> int | None:
    """The process's peak resident set so far (on every device: host memory), in bytes."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import sys

    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux
