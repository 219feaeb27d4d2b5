"""What this machine can do: device, precision, memory; and samples for ``hw`` events."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


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


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def detect() -> Hardware:
    import psutil
    import torch  # heavy: device detection

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", props.name, torch.cuda.device_count(), props.total_memory,
                        torch.cuda.is_bf16_supported(), os.cpu_count() or 1, psutil.virtual_memory().total)
    flags = cpu_flags()
    return Hardware("cpu", None, 0, None, bool({"avx512_bf16", "amx_bf16"} & flags),
                    os.cpu_count() or 1, psutil.virtual_memory().total)


def precision(hw: Hardware, requested: str = "auto") -> str:
    """``bfloat16`` where the hardware runs it fast, else ``float32`` (or what was asked)."""
    if requested in ("bf16", "bfloat16"):
        return "bfloat16"
    if requested in ("fp32", "float32"):
        return "float32"
    return "bfloat16" if hw.bf16 else "float32"


class Sampler:
    """Readings for ``hw`` events: GPU (through NVML when available), CPU and this process."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._proc.cpu_percent(None)
        self._nvml: Any = None
        try:
            import pynvml  # optional: comes with some CUDA installs

            pynvml.nvmlInit()
            self._nvml = pynvml
        except Exception:  # no NVML: no GPU readings beyond torch's memory counters
            self._nvml = None

    def sample(self) -> dict[str, Any]:
        import psutil

        out: dict[str, Any] = {
            "cpu_percent": psutil.cpu_percent(None),
            "rss_bytes": self._proc.memory_info().rss,
            "ram_total_bytes": psutil.virtual_memory().total,
        }
        if self._nvml is not None:
            n = self._nvml
            gpus = []
            for i in range(n.nvmlDeviceGetCount()):
                h = n.nvmlDeviceGetHandleByIndex(i)
                mem = n.nvmlDeviceGetMemoryInfo(h)
                try:
                    power = n.nvmlDeviceGetPowerUsage(h) / 1000
                except Exception:
                    power = None
                gpus.append({"index": i, "util": n.nvmlDeviceGetUtilizationRates(h).gpu,
                             "mem_used": mem.used, "mem_total": mem.total, "power_w": power})
            if gpus:
                out.update(gpu_util=gpus[0]["util"], gpu_mem_used=gpus[0]["mem_used"],
                           gpu_mem_total=gpus[0]["mem_total"], gpu_power_w=gpus[0]["power_w"], gpus=gpus)
        else:
            import torch

            if torch.cuda.is_available():
                free, total = torch.cuda.mem_get_info()
                out.update(gpu_mem_used=total - free, gpu_mem_total=total)
        return out
