"""What an evaluation works on, the same for every backend: the held-out examples, the task
that scores them, and each variant's prompts (k-shot with its fixed training examples)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

from ftui.core.config import EvalSettings, PromptTemplate
from ftui.core.errors import ConfigError
from ftui.core.examples import Example
from ftui.core.prompts import render_messages
from ftui.core.runs import Run
from ftui.core.runspec import eval_settings_of, template_of
from ftui.core.scoring import VARIANTS
from ftui.core.tasks import Task, make_task


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

    def prompts(self, variant: str) -> list[list[dict[str, Any]]]:
        shots = self.shots if variant == "kshot" else ()
        return [render_messages(ex, self.template, shots=shots) for ex in self.examples]


def plan_eval(run: Run, variants: Sequence[str], limit: int | None) -> EvalPlan:
    """The plan for ``variants`` on the run's test split; ``limit``: the first N examples
    (default: ``eval.limit`` of run.json, 0 = all). Bad requests fail before any work."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown eval variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    spec = run.spec
    settings = eval_settings_of(spec)
    n = limit if limit is not None else settings.limit
    examples = run.examples("test")
    examples = examples[:n] if n and n > 0 else examples
    if not examples:
        raise ConfigError(f"run {run.id} has no test examples to evaluate")
    train = run.examples("train") if "kshot" in variants else []
    shot_indices = choose_shots(len(train), settings.k, seed=spec.get("split", {}).get("seed", 0))
    return EvalPlan(settings=settings, template=template_of(spec),
                    task=make_task(spec["task"], spec.get("task_options") or {}), examples=examples,
                    shot_indices=shot_indices, shots=[train[i] for i in shot_indices])
