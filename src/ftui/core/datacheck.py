"""The data report behind ``ftui data check`` and the Dataset screen."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ftui.core.config import PromptTemplate, SplitSpec
from ftui.core.data import Issue, Loaded, make_splits
from ftui.core.errors import ConfigError
from ftui.core.prompts import Message, conversation

TokenCounter = Callable[[Sequence[Sequence[Message]]], list[int]]
"""Counts the tokens of whole conversations (chat template applied); supplied by a backend."""


@dataclass
class DataReport:
    """Everything a person needs to decide whether a dataset is usable."""

    source: str
    format: str
    task: str
    rows: int
    valid: int
    """Usable examples (after a preset's limit, if any)."""
    issues: list[Issue]
    limited_from: int = 0
    """Usable examples before the preset's limit (0: no limit)."""
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    """(line, line of its first occurrence) for repeated inputs."""
    conflicting: int = 0
    """Duplicated inputs whose references differ."""
    tokens: dict[str, float] | None = None
    """min, mean, p50, p95, max, total tokens per conversation; None when not counted."""
    tokenizer: str = ""
    """Which tokenizer counted, or why none did."""
    max_length: int = 0
    too_long: list[int] = field(default_factory=list)
    """Lines whose conversation is longer than ``max_length`` tokens."""
    split: dict[str, int] | None = None
    split_error: str = ""

    @property
    def ok(self) -> bool:
        """No bad rows and something to train on."""
        return not self.issues and self.valid > 0 and not self.split_error

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "task": self.task,
            "ok": self.ok,
            "rows": self.rows,
            "valid": self.valid,
            "limited_from": self.limited_from or None,
            "errors": [{"line": i.line, "field": i.field, "message": i.message} for i in self.issues],
            "duplicates": len(self.duplicates),
            "duplicate_lines": [{"line": a, "first": b} for a, b in self.duplicates],
            "conflicting_duplicates": self.conflicting,
            "tokens": self.tokens,
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "too_long": len(self.too_long),
            "too_long_lines": self.too_long,
            "split": self.split,
            "split_error": self.split_error,
        }


def build_report(loaded: Loaded, *, task: str, template: PromptTemplate, split: SplitSpec,
                 max_length: int, count_tokens: TokenCounter | None = None,
                 tokenizer_name: str = "") -> DataReport:
    """Check a loaded dataset: duplicates, token lengths against ``max_length``, split sizes."""
    report = DataReport(source=loaded.source, format=loaded.format, task=task, rows=loaded.rows,
                        valid=len(loaded.examples), issues=list(loaded.issues), max_length=max_length,
                        limited_from=loaded.limited_from)
    first_seen: dict[tuple[str, ...], tuple[int, str]] = {}
    for ex in loaded.examples:
        key = ex.key()
        if key in first_seen:
            line, ref = first_seen[key]
            report.duplicates.append((ex.line, line))
            report.conflicting += ref != ex.reference
        else:
            first_seen[key] = (ex.line, ex.reference)
    try:
        if loaded.named is not None:  # the source's own splits, as published
            report.split = {k: len(v) for k, v in make_splits(loaded, split).items()}
        else:
            report.split = dict(zip(("train", "val", "test"), split.sizes(report.valid)))
    except ConfigError as exc:
        report.split_error = str(exc)
    if count_tokens is not None and loaded.examples:
        try:
            counts = count_tokens([conversation(ex, template) for ex in loaded.examples])
        except ConfigError as exc:
            report.tokenizer = f"not counted: {exc}"
        else:
            report.tokens = token_stats(counts)
            report.tokenizer = tokenizer_name
            report.too_long = [ex.line for ex, n in zip(loaded.examples, counts) if n > max_length]
    else:
        report.tokenizer = tokenizer_name or "not counted"
    return report


def token_stats(counts: Sequence[int]) -> dict[str, float]:
    """Summary of per-example token counts."""
    ordered = sorted(counts)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "min": ordered[0],
        "mean": round(statistics.fmean(ordered), 1),
        "p50": statistics.median_low(ordered),
        "p95": p95,
        "max": ordered[-1],
        "total": sum(ordered),
    }
