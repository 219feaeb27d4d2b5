"""What every backend implements: train a run, and answer prompts for evaluation.

The runner drives every backend through this one protocol (``ftui.runner.runner``), and the
evaluation loop around ``Answerer.answer`` (stop checks, progress, scoring, records, events)
exists once, in ``ftui.backends.evaluate``. A backend module exposes ``BACKEND``, an object
with these methods; ``load_backend`` finds it from the registry (``ftui.core.backends``).
No implementation inheritance: a backend is a plain class.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

from ftui.core.backends import backend
from ftui.core.evalplan import EvalPlan
from ftui.core.events import EventWriter
from ftui.core.runs import Run


@dataclass
class TrainJob:
    """What the runner hands a backend's ``train``."""

    events: EventWriter
    should_stop: Callable[[], bool]
    """True once the viewer asked to stop (the stop file or SIGTERM): end the step, save, return."""
    set_state: Callable[..., None]
    """``set_state(state, message)``: status.json and a status event."""
    resume: bool = False
    """Continue from the run's last checkpoint (or re-attach to its remote job)."""


@dataclass(frozen=True)
class Trained:
    """How ``train`` ended (a failure raises instead)."""

    state: str
    """``succeeded`` (the fine-tuned model exists) or ``cancelled`` (stopped; resumable)."""
    message: str = ""


@dataclass(frozen=True)
class Answer:
    """One model output for one prompt."""

    text: str
    latency_s: float = 0.0
    """Seconds this prompt took (its share of a batch for batched decoding)."""
    error: str | None = None
    """Why there is no answer (a failed request): recorded on the example, scored invalid."""


@dataclass
class Answered:
    """A variant's answers, in prompt order, and what its ``metrics.json`` should say about them."""

    answers: list[Answer]
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    """The wall time the answers took, when not the ``answer`` call's: answers decoded together
    with another variant's (the sum of their latencies, each example's share of the time)."""


class Answerer(Protocol):
    """Answers a plan's prompts, variant by variant (a local model stays loaded between them)."""

    def describe(self, variant: str) -> str:
        """Where the answers come from, for the log ("on cpu", "on gpt-4.1-nano, 8 at a time")."""
        ...

    def answer(self, variant: str, prompts: Sequence[Sequence[dict]], *, on_progress: Callable[[int], None],
               should_stop: Callable[[], bool]) -> Answered | None:
        """Every prompt's answer, or None when ``should_stop()`` said so before the end."""
        ...

    def after(self, variant: str, answered: Answered, events: EventWriter | None) -> None:
        """After the variant's records are written (a remote backend's cost event)."""
        ...

    def close(self) -> None:
        ...


class Player(Protocol):
    """Answers one prompt at a time, token by token, for the Playground (``ftui.runner.serve``),
    with its models loaded once and kept between prompts."""

    variants: tuple[str, ...]
    """The variants it can answer (``finetuned`` only where the run has trained weights)."""

    def describe(self) -> str:
        """Where the answers come from ("cpu, float32", "gpt-4.1-nano and ft:...")."""
        ...

    def stream(self, variant: str, prompt: Sequence[dict], *, max_new_tokens: int,
               should_stop: Callable[[], bool]) -> Iterator[str]:
        """The answer so far after each new token, greedy, ending as eval's does (its stop
        tokens, ``max_new_tokens``); stops early when ``should_stop()`` says so."""
        ...

    def close(self) -> None:
        ...


class Backend(Protocol):
    def train(self, run: Run, job: TrainJob) -> Trained:
        """Train (or resume, or re-attach) to the end or to a stop request; a failure raises
        (an FtuiError for what the user can fix)."""
        ...

    def answerer(self, run: Run, plan: EvalPlan, variants: Sequence[str]) -> Answerer:
        """Ready to answer ``variants``; refuses (ConfigError) before any work when one cannot
        be evaluated (no fine-tuned model yet)."""
        ...

    def player(self, run: Run) -> Player:
        """The Playground's models for ``run``, loaded (slow: called by ``ftui.runner.serve``)."""
        ...

    def export_model(self, run: Run, kind: str, *, out: Any = None, gguf_types: Sequence[str] = ("f16",)) -> list:
        """Write the run's model as ``kind`` (``core.modelcard.KINDS``: adapter, merged, gguf) into
        folder ``out`` (default inside the run) with its card; the files written. Refuses
        (ConfigError, with the reason) what the backend cannot export."""
        ...


def load_backend(name: str) -> Backend:
    """The implementation of the registered backend ``name`` (imports its module)."""
    return importlib.import_module(backend(name).module).BACKEND
