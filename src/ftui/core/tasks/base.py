"""What every task provides: a parser for model output and a scorer against the reference.

A task never renders prompts (see ``ftui.core.prompts``); it judges outputs. Scorers get
model output, which is hostile input: they never raise on it, they record an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence


@dataclass(frozen=True)
class Score:
    """The verdict on one prediction."""

    valid: bool
    """The output has the task's format (parses, satisfies the schema or allowed lists)."""
    exact: bool
    """The output equals the reference after the task's normalisation."""
    execution: bool | None = None
    """sql only: gold and prediction return the same results (None where not applicable)."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Task-specific numbers for aggregation, e.g. slot counts or per-field agreement."""
    error: str | None = None
    """Why the output is invalid or could not be judged, for the user to read."""


class Task(Protocol):
    """A task: ``name`` plus scoring. Implementations are plain classes, no inheritance."""

    name: str
    metric_keys: tuple[str, ...]
    """The keys ``aggregate`` returns, in display order; all are rates in [0, 1]."""

    def score(self, prediction: str, reference: str, inputs: Mapping[str, str]) -> Score:
        """Judge one model output. ``inputs`` holds the example's fields (sql: ``context``)."""
        ...

    def aggregate(self, scores: Sequence[Score]) -> dict[str, float]:
        """Rates over many scores, under ``metric_keys``."""
        ...

    def validity(self, prediction: str, inputs: Mapping[str, str]) -> str | None:
        """Judge one output with no reference (new data): None when it is valid, else why not,
        the same verdict as ``score``'s ``valid`` and ``error``. A task without a validity rule
        (no ``valid`` in ``metric_keys``) answers None. Never raises on model output."""
        ...


def judge_validity(task: Task, prediction: str, inputs: Mapping[str, str]) -> tuple[bool | None, str | None]:
    """(valid, why not) for an output with no reference to compare with; (None, None) when the
    task cannot judge validity on its own (no ``valid`` metric, or no ``validity`` method:
    a task registered from elsewhere that predates it)."""
    check = getattr(task, "validity", None)
    if "valid" not in task.metric_keys or check is None:
        return None, None
    problem = check(prediction, inputs)
    return problem is None, problem


def is_scorable(details: Mapping[str, Any]) -> bool:
    """False when the reference itself cannot be judged (sql: the gold query fails on its
    own context), so the example is left out of the rates but ``valid``. A score's or an
    eval record's ``details``; absent means scorable."""
    return details.get("scorable", True) is not False


def rate(values: Sequence[bool | None]) -> float:
    """Share of true values; ``None`` counts as false (could not be judged). 0.0 when empty."""
    if not values:
        return 0.0
    return sum(1 for v in values if v) / len(values)
