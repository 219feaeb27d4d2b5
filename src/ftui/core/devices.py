"""Which devices a local run uses, and how many compute threads it is entitled to on them.

A local run trains on the GPUs its ``devices`` setting names (physical ids, as ``nvidia-smi``
numbers them), by default on every visible one (``CUDA_VISIBLE_DEVICES``, else all GPUs), and
on the CPU where there is none. Runs on the same devices take turns (``ftui.runner.devicequeue``);
runs on disjoint sets go side by side. The runner exports its choice to the processes it
starts (``device_env``): the GPUs they see, and a thread count chosen here rather than left to
each library, which starts one thread per core in every process and lets them fight.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

CPU = "cpu"


@dataclass(frozen=True)
class Devices:
    """The devices one run works on."""

    gpus: tuple[str, ...]
    """GPU ids as ``CUDA_VISIBLE_DEVICES`` names them; empty: the CPU."""
    machine_gpus: int
    """GPUs on this machine (for a run's share of the CPU cores beside its GPUs)."""
    hide_gpus: bool = False
    """``devices=cpu`` on a machine with GPUs: the run must not see them."""

    @property
    def cpu(self) -> bool:
        return not self.gpus

    @property
    def keys(self) -> tuple[str, ...]:
        """One name per device, for the queue's lock files (``cpu``, ``gpu0``, ``gpu1``)."""
        if self.cpu:
            return (CPU,)
        return tuple("gpu" + re.sub(r"[^A-Za-z0-9_-]", "_", g) for g in self.gpus)

    @property
    def label(self) -> str:
        """``cpu``, ``GPU 0`` or ``GPUs 1,2``: for status lines."""
        if self.cpu:
            return CPU
        return f"GPU{'s' if len(self.gpus) > 1 else ''} {','.join(self.gpus)}"


def check_devices(value: Sequence[str]) -> str | None:
    """Why a ``devices`` setting cannot be right, whatever the machine; None when it can."""
    items = [str(v).strip() for v in value]
    if not items:
        return None
    if CPU in (i.lower() for i in items):
        return None if len(items) == 1 else f"'cpu' stands alone (the CPU, no GPU), got {','.join(items)}"
    bad = [i for i in items if not i.isdigit()]
    if bad:
        return f"must be GPU ids (whole numbers as nvidia-smi lists them, e.g. 0 or 1,2) or cpu; got {bad[0]!r}"
    if len(set(int(i) for i in items)) != len(items):
        return f"names a GPU twice: {','.join(items)}"
    return None


def resolve_devices(setting: Sequence[str], *, env: Mapping[str, str] | None = None,
                    machine_gpus: int | None = None) -> Devices:
    """The devices a run with this ``devices`` setting uses here. ``machine_gpus``: the GPUs
    nvidia-smi lists (asked when not given, a subprocess call)."""
    env = os.environ if env is None else env
    items = tuple(str(v).strip() for v in setting if str(v).strip())
    if machine_gpus is None:
        from ftui.core.machine import query_gpus

        machine_gpus = len(query_gpus()[0])
    if items and items[0].lower() == CPU:
        return Devices((), machine_gpus, hide_gpus=machine_gpus > 0)
    if items:
        return Devices(tuple(str(int(i)) for i in items), machine_gpus)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = []
        for item in (v.strip() for v in visible.split(",")):
            if not item or item == "-1":  # CUDA stops at the first invalid id
                break
            ids.append(item)
        return Devices(tuple(ids), machine_gpus)
    return Devices(tuple(str(i) for i in range(machine_gpus)), machine_gpus)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: a container or ``taskset`` may give fewer
    than the machine has)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def entitled_threads(devices: Devices, *, processes: int = 1, cores: int | None = None) -> int:
    """Compute threads per process: on the CPU every core (the queue lets one run at a time
    use it); beside GPUs, the cores in proportion to this run's share of the machine's GPUs
    (runs on other GPUs go side by side); split between the run's processes."""
    cores = usable_cores() if cores is None else cores
    if devices.cpu:
        share = cores
    else:
        share = cores * len(devices.gpus) // max(devices.machine_gpus, len(devices.gpus))
    return max(1, share // max(1, processes))


def device_env(devices: Devices, *, threads: int) -> dict[str, str]:
    """The environment of a run's processes: the GPUs they see and their thread count (read by
    torch, OpenMP and MKL when they start; the local backend also sets torch's explicitly)."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if devices.gpus or devices.hide_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices.gpus)
    return env


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``11th``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
