"""Formatting numbers for screens: durations, money, rates, deltas. Pure functions."""

from __future__ import annotations

import time
from typing import Any, Mapping

HEADLINE_KEYS = (
    "valid", "exact", "execution", "execution_strict", "slot_f1", "schema_valid", "field_agreement",
)
"""Metric keys a summary shows, in this order, where the task has them."""

METRIC_LABELS = {
    "valid": "valid", "exact": "exact", "execution": "execution",
    "execution_strict": "exec strict", "slot_f1": "slot F1",
    "schema_valid": "schema-valid", "field_agreement": "fields",
}


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


def span(seconds: float | None) -> str:
    """``duration`` without spaces (``4m12s``, ``1h05m``), for a table column."""
    return duration(seconds).replace(" ", "")


def work_time(train_s: float | None, eval_s: float | None) -> str:
    """A run's working time (``Run.summary``): ``4m12s+1m30s``, training then evaluation, or the
    training alone when it never evaluated; ``—`` before a runner wrote."""
    if train_s is None:
        return "—"
    return span(train_s) + (f"+{span(eval_s)}" if eval_s else "")


def rate(per_s: float, unit: str) -> str:
    """``3.1 examples/s``; two significant digits below 1 (a slow CPU eval is not ``0.0``)."""
    return f"{per_s:.1f} {unit}/s" if per_s >= 1 else f"{per_s:.2g} {unit}/s"


def money(usd: float | None, *, digits: int = 2) -> str:
    if usd is None:
        return "—"
    if 0 < usd < 0.01:
        return f"${usd:.4f}"
    return f"${usd:,.{digits}f}"


def pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def delta_pp(value: float | None, base: float | None) -> str:
    """Change in percentage points, ``+12.5``; empty when either side is missing."""
    if value is None or base is None:
        return ""
    return f"{(value - base) * 100:+.1f}"


def gib(n: float | None) -> str:
    return "—" if n is None else f"{n / 2**30:.1f} GiB"


def count(n: float | None) -> str:
    return "—" if n is None else f"{n:,.0f}"


def clock(ts: float | None) -> str:
    """Local date and time of a Unix timestamp, minutes precision."""
    if not ts:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def headline_keys(evals: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The headline metric keys present in any variant's metrics, in display order."""
    present = set()
    for metrics in evals.values():
        present |= set(metrics)
    return [k for k in HEADLINE_KEYS if k in present]


def short(text: str, width: int) -> str:
    """One line of at most ``width`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: max(1, width - 1)] + "…"
