"""Which validation rows a local run computes its validation loss on. Pure: no torch.

A validation row costs about a third to a half of a training row (a forward pass with
no backward), so a whole split of 714 rows (GEM/viggo's) every 50 steps of 8 rows took about as
long as the training between two passes. Each pass therefore reads a subset: ``val_rows`` rows
drawn once from the split by the run's seed, the same ones every pass and after a resume (the
losses of the passes compare, and early stopping compares them), in order of length so that a
batch holds little padding.

Why 64 by default: at the shipped presets' ``eval_every=50`` and ``batch_size=8``, training reads
400 rows between two passes; a validation row costs at most about half a training row (a
forward pass only, the output layer at the answer's positions only), so 64 rows are under 10% of
the training time even before batching by length (one rough measurement on a loaded 2-core box:
a 64-row pass 23x cheaper than the former whole-split pass of 714 rows). Enough
rows for a steady loss to compare passes by (the same rows each time); ``val_rows=all`` for all.
"""

from __future__ import annotations

import random
from typing import Sequence


def subset_size(val_rows: int, available: int) -> int:
    """Rows a pass reads: ``val_rows`` (0: all), at most the split."""
    return available if val_rows <= 0 else min(val_rows, available)


def validation_subset(lengths: Sequence[int], *, val_rows: int, seed: int) -> list[int]:
    """Indices of the validation rows each pass reads, longest first: ``val_rows`` of them (0:
    all) drawn by ``seed`` alone, so a run and its resume read the same rows."""
    n = subset_size(val_rows, len(lengths))
    chosen = range(len(lengths)) if n == len(lengths) else random.Random(seed).sample(range(len(lengths)), n)
    return sorted(chosen, key=lambda i: (-lengths[i], i))


def describe(rows: int, available: int | None) -> str:
    """``val loss on 64 of 714 rows`` (or ``on all 20 rows``)."""
    if available is None or available <= 0:
        return f"val loss on {rows} rows"
    if rows >= available:
        return f"val loss on all {available} rows"
    return f"val loss on {rows} of {available} rows"
