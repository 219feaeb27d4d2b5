"""The best validation pass of a run: early stopping and the checkpoint a run keeps.

The local backend counts each validation pass with ``BestValidation`` (in training, and again
from the Trainer's log history when a run resumes, so the count goes on where it was) and writes
the count on each ``val`` event (``best_step``, ``best_loss``, ``since_best``). The viewers read
what came of it back from the last ``val`` event with ``outcome``. Pure: no torch, no Textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

MIN_IMPROVEMENT = 1e-4
"""A validation loss is better than the best so far when lower by more than this fraction of it:
float noise (and the 5 decimals a ``val`` event keeps) is no progress."""


@dataclass
class BestValidation:
    """The lowest validation loss so far and the validation passes since it."""

    patience: int = 0
    """Passes without improvement that end training (0: never)."""
    step: int | None = None
    """Step of the best pass so far."""
    loss: float | None = None
    since: int = 0
    """Passes since the best one that did not improve on it."""

    def add(self, step: int, loss: float) -> bool:
        """Count one validation pass; True when it is the new best."""
        if self.loss is None or loss < self.loss - MIN_IMPROVEMENT * abs(self.loss):
            self.step, self.loss, self.since = step, float(loss), 0
            return True
        self.since += 1
        return False

    def replay(self, passes: Iterable[tuple[int, float]]) -> None:
        """Count again the (step, loss) passes of an earlier session, in order (a resume)."""
        self.step, self.loss, self.since = None, None, 0
        for step, loss in passes:
            self.add(step, loss)

    @property
    def exhausted(self) -> bool:
        """Early stopping is on and the loss has not improved for ``patience`` passes."""
        return self.patience > 0 and self.since >= self.patience

    def fields(self) -> dict[str, Any]:
        """The optional fields of a ``val`` event."""
        return {"best_step": self.step, "best_loss": None if self.loss is None else round(self.loss, 5),
                "since_best": self.since}


@dataclass(frozen=True)
class Outcome:
    """What the validation passes of a run decided, read back from its last ``val`` event."""

    best_step: int
    best_loss: float
    since_best: int
    stopped_early_at: int | None
    """The step training stopped at because the loss stopped improving; None: it did not."""
    patience: int
    kept_step: int | None
    """The step whose weights are the run's result (``keep_best``), once they are saved."""

    def text(self) -> str:
        """One line on it (``describe``); empty when there is nothing to say."""
        return describe(stopped_early_at=self.stopped_early_at, patience=self.patience,
                        kept_step=self.kept_step, best_loss=self.best_loss)


def describe(*, stopped_early_at: int | None, patience: int, kept_step: int | None, best_loss: float | None) -> str:
    """``stopped early at step 40: validation loss not improved for 3 passes; kept step 20
    (val 1.2340)``, or a part of it; empty when there is nothing to say."""
    parts = []
    if stopped_early_at is not None:
        # training stops at the first pass that exhausts the patience: exactly `patience` passes
        parts.append(f"stopped early at step {stopped_early_at}: validation loss not improved "
                     f"for {patience} pass{'es' if patience != 1 else ''}")
    if kept_step is not None and best_loss is not None:
        parts.append(f"kept step {kept_step} (val {best_loss:.4f}" + (")" if parts else ", the lowest validation loss)"))
    return "; ".join(parts)


def outcome(last_val: Mapping[str, Any] | None, *, total_steps: int, patience: int, keep_best: bool,
            trained: bool) -> Outcome | None:
    """The outcome of a run whose last ``val`` event is ``last_val``; None before a pass that
    carries the count (no validation, or a run from before it was recorded).

    ``total_steps``: the steps the run was to train; ``trained``: its weights are saved.
    """
    if not last_val or not isinstance(last_val.get("best_step"), int):
        return None
    since = int(last_val.get("since_best") or 0)
    # The runner stops at the pass that exhausts the patience; at the last step it ends anyway.
    stopped = int(last_val["step"]) if patience > 0 and since >= patience and last_val["step"] < total_steps else None
    return Outcome(best_step=last_val["best_step"], best_loss=float(last_val["best_loss"]), since_best=since,
                   stopped_early_at=stopped, patience=patience,
                   kept_step=last_val["best_step"] if keep_best and trained else None)
