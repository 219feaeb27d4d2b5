"""What an evaluation works on, the same for every backend: the held-out examples, the task
that scores them, each variant's prompts (k-shot with its fixed training examples), and the
``eval_progress`` events that tell viewers how far a variant has got."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ftui.core.config import EvalSettings, PromptTemplate
from ftui.core.errors import ConfigError
from ftui.core.examples import Example
from ftui.core.prompts import render_messages
from ftui.core.runs import Run
from ftui.core.scoring import VARIANTS
from ftui.core.tasks import Task, make_task

if TYPE_CHECKING:
    from ftui.core.events import EventWriter

PROGRESS_INTERVAL_S = 2.0
"""Seconds between a variant's ``eval_progress`` events (its start, first answers and end aside)."""
PROGRESS_INTERVAL_ENV = "FTUI_EVAL_PROGRESS_S"
"""Overrides ``PROGRESS_INTERVAL_S`` (tests set 0 to see every batch without waiting)."""


def choose_shots(n_train: int, k: int, *, seed: int) -> list[int]:
    """Indices of the k training examples every k-shot prompt shows, fixed by the split seed."""
    return sorted(random.Random(seed).sample(range(n_train), min(k, n_train)))


@dataclass
class EvalPlan:
    settings: EvalSettings
    template: PromptTemplate
    task: Task
    examples: list[Example]
    shot_indices: list[int]
    """Positions in ``data/train.jsonl`` of the k-shot examples."""
    shots: list[Example]
    heldout: str = ""
    """The name of another held-out set (``data/heldout-NAME.jsonl``, from ``ftui eval --data``);
    empty for the run's own test split."""

    def out_name(self, variant: str) -> str:
        """Where a variant's results go under ``eval/``: ``finetuned``, or ``finetuned@NAME``
        for another held-out set, so the run's own results stay as they were."""
        return f"{variant}@{self.heldout}" if self.heldout else variant

    def prompts(self, variant: str) -> list[list[dict[str, Any]]]:
        shots = self.shots if variant == "kshot" else ()
        return [render_messages(ex, self.template, shots=shots) for ex in self.examples]


def plan_eval(run: Run, variants: Sequence[str], limit: int | None, *, heldout: str = "") -> EvalPlan:
    """The plan for ``variants`` on the run's test split, or on the held-out set ``heldout``;
    ``limit``: the first N examples (default: ``eval.limit`` of run.json for the test split,
    all of another set, 0 = all). Bad requests fail before any work."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown eval variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    spec = run.spec
    settings = spec.eval
    n = limit if limit is not None else (0 if heldout else settings.limit)
    examples = run.examples(f"heldout-{heldout}" if heldout else "test")
    examples = examples[:n] if n and n > 0 else examples
    if not examples:
        raise ConfigError(f"run {run.id} has no test examples to evaluate")
    return plan_examples(run, variants, examples, heldout=heldout)


def plan_examples(run: Run, variants: Sequence[str], examples: list[Example], *, heldout: str = "") -> EvalPlan:
    """The plan for ``variants`` on ``examples`` with the run's prompt, task and eval settings,
    and for k-shot the same training examples its eval shows (``ftui predict`` on new rows)."""
    spec = run.spec
    train = run.examples("train") if "kshot" in variants else []
    shot_indices = choose_shots(len(train), spec.eval.k, seed=spec.split.seed)
    return EvalPlan(settings=spec.eval, template=spec.prompt,
                    task=make_task(spec.task, spec.task_options), examples=examples,
                    shot_indices=shot_indices, shots=[train[i] for i in shot_indices], heldout=heldout)


class EvalProgressReporter:
    """Writes one variant's ``eval_progress`` events at a modest rate: ``done=0`` at ``start()``,
    then the first answers, at most one every ``interval_s``, and the last.

    The rate is the variant's answers over its own elapsed time (from ``start()``), so the ETA
    moves as the variant speeds up or slows down; a variant of 568 rows on a CPU writes a few
    hundred lines at most.
    """

    def __init__(self, events: EventWriter | None, variant: str, total: int, *,
                 interval_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.events, self.variant, self.total = events, variant, total
        self.interval_s = progress_interval_s() if interval_s is None else interval_s
        self._clock = clock
        self._began = clock()
        self._last_written: float | None = None  # None until the first answers were reported

    def start(self) -> None:
        """Report the variant as begun (0 done) and start its clock."""
        self._began = self._clock()
        self._write(0, None, None)

    def __call__(self, done: int) -> None:
        """``done`` of ``total`` answered (a progress callback; cheap when nothing is written)."""
        if self.events is None:
            return
        now = self._clock()
        due = self._last_written is None or now - self._last_written >= self.interval_s
        if not due and done < self.total:
            return
        self._last_written = now
        elapsed = now - self._began
        rate = done / elapsed if done > 0 and elapsed > 0 else None
        eta = (self.total - done) / rate if rate else None
        # hundredths: a fast variant's ETA still moves between its batches
        self._write(done, None if rate is None else round(rate, 3), None if eta is None else round(eta, 2))

    def _write(self, done: int, rate: float | None, eta: float | None) -> None:
        if self.events is not None:
            self.events.write("eval_progress", variant=self.variant, done=min(done, self.total), total=self.total,
                              examples_per_s=rate, eta_s=eta)


def progress_interval_s() -> float:
    """``PROGRESS_INTERVAL_S``, or the number in ``$FTUI_EVAL_PROGRESS_S`` when it holds one."""
    try:
        return max(0.0, float(os.environ[PROGRESS_INTERVAL_ENV]))
    except (KeyError, ValueError):
        return PROGRESS_INTERVAL_S
