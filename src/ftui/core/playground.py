"""What the Playground works on, without a model: the run's held-out examples as starting
points, the fields a person edits, each variant's prompt built exactly as eval builds it
(``EvalPlan``: the run's template, the same k-shot examples), and the task's verdict on an
output (its validity, and for SQL the rows the query returns on the example's database).

The model side is ``ftui.runner.serve`` (a separate process); the screen is
``ftui.tui.screens.playground``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ftui.core.evalplan import EvalPlan, plan_eval
from ftui.core.examples import Example
from ftui.core.prompts import Message, render_messages
from ftui.core.runs import Run
from ftui.core.scoring import VARIANTS
from ftui.core.tasks.base import is_scorable

MAIN_FIELDS = ("question", "text", "input")
"""The field a person types, in order of preference; the others (sql: ``context``) are
prefilled from the held-out example and editable."""
MAX_ROWS_SHOWN = 8
"""Result rows shown under an SQL output."""


def refusal(run: Run) -> str:
    """Why ``run`` has no Playground yet: no trained weights (or fine-tuned model) so far."""
    state = run.status().get("state", "queued")
    return (f"run {run.id} has no trained weights yet (it is {state}): the Playground opens once training "
            "has finished (adapter/, model/, or the OpenAI job's ft: model)")


def playground_plan(run: Run) -> EvalPlan:
    """Eval's plan over every held-out example of the run: its prompts are the Playground's."""
    return plan_eval(run, VARIANTS, 0)


def template_fields(plan: EvalPlan, example: Example) -> list[str]:
    """The fields a person can edit for ``example``, the main one first: those the prompt
    template names (a chat source: its last user turn, ``input``)."""
    if example.messages is not None:
        return ["input"]
    names = [name for _, name, _, _ in string.Formatter().parse(plan.template.user) if name]
    ordered = list(dict.fromkeys(n for n in names if n in example.fields)) or sorted(example.fields)
    main = next((m for m in MAIN_FIELDS if m in ordered), ordered[-1] if ordered else "input")
    return [main] + [n for n in ordered if n != main]


def edited(example: Example, values: Mapping[str, str]) -> Example:
    """``example`` with its fields replaced by ``values`` (a chat source: its last user turn)."""
    fields = {**example.fields, **values}
    messages = example.messages
    if messages is not None and "input" in values:
        turns = [dict(m) for m in messages]
        for turn in reversed(turns):
            if turn.get("role") == "user":
                turn["content"] = values["input"]
                break
        messages = tuple(turns)
    return Example(fields=fields, reference=example.reference, messages=messages, line=example.line,
                   extra=example.extra)


def prompts(plan: EvalPlan, example: Example, variants: Sequence[str] = VARIANTS) -> dict[str, list[Message]]:
    """Each variant's chat prompt for ``example``, as ``EvalPlan.prompts`` renders it."""
    return {v: render_messages(example, plan.template, shots=plan.shots if v == "kshot" else ())
            for v in variants}


@dataclass(frozen=True)
class Verdict:
    """The task's word on one Playground output."""

    valid: bool | None
    """None where the task has no validity rule (a text task without ``valid_regex``)."""
    error: str | None = None
    correct: bool | None = None
    """Against the held-out example's reference; None once the input was edited."""
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    """sql: the first rows the output returns on the example's first generated database."""
    more_rows: int = 0
    """Rows returned beyond those in ``rows``."""
    result_error: str | None = None
    shows_rows: bool = False
    """Whether the task runs outputs (sql): the screen says "no rows" rather than nothing."""
    details: Mapping[str, Any] = field(default_factory=dict)


def judge(plan: EvalPlan, output: str, example: Example, *, unedited: bool) -> Verdict:
    """The task's verdict on ``output`` for ``example`` (never raises on the output)."""
    task = plan.task
    score = task.score(output, example.reference, example.fields)
    has_validity = "valid" in task.metric_keys
    correct = None
    if unedited and is_scorable(score.details):
        correct = bool(score.exact or score.execution)
    result = getattr(task, "result_rows", None)
    if result is None:
        return Verdict(valid=score.valid if has_validity else None, error=score.error, correct=correct,
                       details=score.details)
    columns, rows, problem = result(output, example.reference, example.fields)
    return Verdict(valid=score.valid if has_validity else None, error=score.error, correct=correct,
                   columns=tuple(columns), rows=tuple(rows[:MAX_ROWS_SHOWN]),
                   more_rows=max(0, len(rows) - MAX_ROWS_SHOWN), result_error=problem, shows_rows=True,
                   details=score.details)
