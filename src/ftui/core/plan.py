"""What a local training will do, before it starts: its steps, its tokens, and how long the
same model took on this machine before. Pure (no Textual, no torch); the Backend screen shows
it as the form changes.

Step counts follow transformers' Trainer (``set_initial_training_values``): an epoch is the
training split cut into batches (the last one short), shared out among the processes, then
grouped by ``grad_accum`` into optimizer steps, at least one; ``max_steps`` above 0 replaces
the epochs (more than an epoch's steps go round the data again). Times come only from what an
earlier run measured: tokens/s of a local run of the same model on this host, never a guess.
"""

from __future__ import annotations

import math
import socket
import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ftui.core.backends import backend
from ftui.core.errors import ConfigError
from ftui.core.events import read_events
from ftui.core.runs import Run


@dataclass(frozen=True)
class TokenCounts:
    """The data's tokens per example (whole conversations), as ``ftui data check --json`` counted them."""

    mean: float
    longest: int

    @classmethod
    def from_report(cls, report: Any) -> TokenCounts | None:
        """Read ``ftui data check --json``'s object (its ``tokens``); None when nothing was counted."""
        if not isinstance(report, Mapping) or not isinstance(report.get("tokens"), Mapping):
            return None
        stats = report["tokens"]
        try:
            return cls(mean=float(stats["mean"]), longest=int(stats["max"]))
        except (KeyError, TypeError, ValueError):
            return None


def steps_per_epoch(examples: int, *, batch_size: int, grad_accum: int = 1, processes: int = 1) -> int:
    """Optimizer steps in one pass over ``examples`` (the Trainer's count)."""
    batches = math.ceil(examples / batch_size)
    per_process = math.ceil(batches / max(processes, 1))  # accelerate shares out whole batches
    return max(math.ceil(per_process / grad_accum), 1)


@dataclass(frozen=True)
class TrainingPlan:
    """The steps and tokens of a local training, from its settings and the data's size."""

    examples: int
    """Examples in the training split."""
    steps_per_epoch: int
    total_steps: int
    epochs: float
    """Passes over the training split the steps make (``max_steps`` can stop early or go on)."""
    max_steps: int
    """The setting: -1 lets the epochs decide."""
    tokens_per_epoch: int | None
    """About: the mean tokens of an example (at most ``max_length``) times the examples; None
    when the data's tokens are not counted (yet)."""
    processes: int = 1

    @property
    def tokens(self) -> int | None:
        """Tokens the whole training goes through (about)."""
        return None if self.tokens_per_epoch is None else round(self.tokens_per_epoch * self.epochs)

    def line(self) -> str:
        """``340 examples, ~36.8K tokens: 43 steps/epoch × 3 = 129 steps``."""
        tokens = f", ~{about(self.tokens_per_epoch)} tokens" if self.tokens_per_epoch is not None else ""
        if self.max_steps > 0:
            epochs = f"{self.epochs:.2f}".rstrip("0").rstrip(".")
            steps = f"{self.steps_per_epoch:,} steps/epoch; max steps {self.max_steps:,} = {epochs} epochs"
        else:
            steps = f"{self.steps_per_epoch:,} steps/epoch × {self.epochs:g} = {self.total_steps:,} steps"
        where = f" on {self.processes} processes" if self.processes > 1 else ""
        return f"{self.examples:,} examples{where}{tokens}: {steps}"


def plan_training(*, examples: int, batch_size: int, grad_accum: int, epochs: float, max_steps: int,
                  max_length: int, tokens: TokenCounts | None, processes: int = 1) -> TrainingPlan:
    """The plan of a training with these settings (validated by the caller: positive sizes,
    ``max_steps`` -1 or above 0)."""
    per_epoch = steps_per_epoch(examples, batch_size=batch_size, grad_accum=grad_accum, processes=processes)
    if max_steps > 0:
        total, passes = max_steps, max_steps / per_epoch
    else:
        total = math.ceil(epochs * per_epoch)
        passes = epochs
    per_example = None if tokens is None else min(tokens.mean, max_length)
    return TrainingPlan(examples=examples, steps_per_epoch=per_epoch, total_steps=total, epochs=passes,
                        max_steps=max_steps, processes=processes,
                        tokens_per_epoch=None if per_example is None else round(per_example * examples))


@dataclass(frozen=True)
class MeasuredSpeed:
    """How fast an earlier local run trained on this machine."""

    run_id: str
    model: str
    method: str | None
    tokens_per_s: float
    """The median over its ``train`` events (each measured over its last steps' busy time, so
    pauses, validation and checkpoints are not in it)."""
    created: float


def measured_speeds(runs: Iterable[Run], *, host: str | None = None) -> list[MeasuredSpeed]:
    """Training speeds that local runs measured on ``host`` (this one by default), newest first."""
    host = host or socket.gethostname()
    out = []
    for run in runs:
        spec = run.spec
        try:
            remote = backend(spec.backend).remote
        except ConfigError:  # a plugin's backend that is not loaded: not known to train here
            continue
        if remote or run.status().get("host") != host:
            continue
        rates = [float(e["tokens_per_s"]) for e in read_events(run.events_path)
                 if e["type"] == "train" and e["tokens_per_s"] > 0]
        if rates:
            out.append(MeasuredSpeed(run_id=run.id, model=spec.model, method=spec.setting("method"),
                                     tokens_per_s=statistics.median(rates), created=spec.created or 0.0))
    return sorted(out, key=lambda s: (s.created, s.run_id), reverse=True)


def speed_for(speeds: Sequence[MeasuredSpeed], *, model: str, method: str) -> MeasuredSpeed | None:
    """The newest measurement of ``model`` trained by ``method``, else of ``model`` by any method."""
    same_model = [s for s in speeds if s.model == model]
    return next((s for s in same_model if s.method == method), same_model[0] if same_model else None)


def about(n: int) -> str:
    """``36.8K``, ``1.2M``: a rough count in three figures."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)
