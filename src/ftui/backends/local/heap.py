"""Resident memory that stays flat over a long CPU run: the C library's heap under tensors of
ever new shapes (issue #19).

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves a request at or above
its mmap threshold with a mapping of its own, unmapped when freed; a smaller one from its heaps
("arenas"), which give memory back to the system only from their top. The threshold starts at
128 KiB and rises to the size of every mapped block freed, up to 32 MiB, so after the first
step nearly every activation comes from the heaps. Batches of a new length each step then ask
for sizes the freed holes do not fit; the heaps grow around them, and the resident set with them.

``HeapCallback`` fixes the threshold at training start (``mallopt(M_MMAP_THRESHOLD)``, which
also stops it rising), so that tensors of ``MMAP_THRESHOLD`` and more are mapped and unmapped on
their own, and hands the heaps' free pages back to the system at the end of every step
(``malloc_trim``). Neither changes a computed value: only where freed memory goes. Elsewhere
than glibc (macOS, musl) both are skipped. ``benchmarks/memory.py`` measures the resident memory
of a long run, ``benchmarks/train_throughput.py`` what the fresh pages of mapped blocks cost.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

MMAP_THRESHOLD = 1 << 20
"""Bytes: tensors of this size and more get a mapping of their own (a 576-wide bf16 activation of
1,024 tokens is 1.2 MiB); smaller requests stay in the heaps."""
TRIM_EVERY = 1
"""Steps between two ``malloc_trim`` calls (each walks the heaps' free blocks: cheap next to a
CPU training step of a second or more)."""

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.cache
def _glibc() -> Any | None:
    """The running glibc through ctypes, or None under another C library."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        libc = ctypes.CDLL(None)
    except (ValueError, OSError, AttributeError):  # not glibc, or no confstr (Windows)
        return None
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    if hasattr(libc, "mallinfo2"):  # glibc 2.33 and later
        libc.mallinfo2.restype = _MallInfo2
    return libc


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Requests of ``threshold`` bytes and more are mapped and unmapped on their own, from now on
    in this process (glibc stops adjusting it); False where that is not glibc."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1)


def trim() -> bool:
    """Hand the heaps' free pages back to the system; True when some were."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


@dataclass(frozen=True)
class HeapStats:
    """Bytes, from glibc's ``mallinfo2``."""

    in_use: int
    """Allocated from the heaps and not freed."""
    free: int
    """Freed into the heaps and kept there (resident unless trimmed)."""
    mapped: int
    """In blocks with their own mapping."""


def stats() -> HeapStats | None:
    """The heaps' figures (all arenas), or None where that is not glibc 2.33 or later."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    info = libc.mallinfo2()
    return HeapStats(in_use=int(info.uordblks), free=int(info.fordblks), mapped=int(info.hblkhd))


class HeapCallback(TrainerCallback):
    """Fixes the mmap threshold as training starts and trims the heaps every ``trim_every`` steps."""

    def __init__(self, *, mmap_threshold: int | None = MMAP_THRESHOLD, trim_every: int = TRIM_EVERY) -> None:
        self.mmap_threshold = mmap_threshold
        self.trim_every = trim_every

    def on_train_begin(self, args, state, control, **kwargs):
        if self.mmap_threshold:
            fix_mmap_threshold(self.mmap_threshold)

    def on_step_end(self, args, state, control, **kwargs):
        if self.trim_every and state.global_step % self.trim_every == 0:
            trim()
