"""What the local backend asks torch about the hardware: the device, bf16 on it, the training
precision; and the ``hw`` event sampler. Every torch-free fact comes from ``core/machine.py``."""

from __future__ import annotations

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
