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


@dataclass(frozen=True)
class Duplicate:
    """An example whose input appeared before: where it is and where it was first."""

    line: int
    first: int
    file: str = ""
    """The files' names when the source is a folder of split files."""
    first_file: str = ""

    def __str__(self) -> str:
        here = f"{self.file} line {self.line}" if self.file else f"line {self.line}"
        there = f"{self.first_file} line {self.first}" if self.first_file else f"line {self.first}"
        return f"{here} repeats {there}"


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
    duplicates: list[Duplicate] = field(default_factory=list)
    """Repeated inputs, each with where it first appeared."""
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
    leaked: list[Duplicate] = field(default_factory=list)
    """Held-out rows (validation or test split) whose input is also in the training split:
    a model can score well on them by remembering."""

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
            "duplicate_lines": [_duplicate_json(d) for d in self.duplicates],
            "conflicting_duplicates": self.conflicting,
            "tokens": self.tokens,
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "too_long": len(self.too_long),
            "too_long_lines": self.too_long,
            "split": self.split,
            "split_error": self.split_error,
            "leaked": len(self.leaked),
            "leaked_lines": [_duplicate_json(d) for d in self.leaked],
        }


def _duplicate_json(d: Duplicate) -> dict[str, Any]:
    return {"line": d.line, "first": d.first, **({"file": d.file, "first_file": d.first_file} if d.file else {})}


def build_report(loaded: Loaded, *, task: str, template: PromptTemplate, split: SplitSpec,
                 max_length: int, count_tokens: TokenCounter | None = None,
                 tokenizer_name: str = "") -> DataReport:
    """Check a loaded dataset: duplicates, token lengths against ``max_length``, split sizes."""
    report = DataReport(source=loaded.source, format=loaded.format, task=task, rows=loaded.rows,
                        valid=len(loaded.examples), issues=list(loaded.issues), max_length=max_length,
                        limited_from=loaded.limited_from)
    first_seen: dict[tuple[str, ...], Any] = {}
    for ex in loaded.examples:
        key = ex.key()
        if key in first_seen:
            first = first_seen[key]
            report.duplicates.append(Duplicate(ex.line, first.line, ex.file, first.file))
            report.conflicting += first.reference != ex.reference
        else:
            first_seen[key] = ex
    try:
        splits = make_splits(loaded, split)
    except ConfigError as exc:
        report.split_error = str(exc)
    else:
        report.split = {k: len(v) for k, v in splits.items()}
        trained = {ex.key(): ex for ex in splits["train"]}
        report.leaked = [Duplicate(ex.line, trained[ex.key()].line, ex.file, trained[ex.key()].file)
                         for name in ("val", "test") for ex in splits[name] if ex.key() in trained]
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
