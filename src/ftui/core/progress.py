"""What a run's events add up to, for every viewer (the Training screen, ``Run.summary``).
Pure: no Textual, no threads.

``RunProgress.apply`` folds a batch of events (the EventTail's output) into the latest state,
so a viewer that attaches late replays the file from the start and ends where a viewer that
watched all along would be.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ftui.core.events import state_detail

ETA_WINDOW = 20
"""Train events the pace (seconds per step) is measured over."""
MAX_POINTS = 400
"""A chart series is thinned to about this many points (the loss of every step stays on disk)."""
STEP_LINE_S = 10.0
"""Seconds of the run between two step lines in the log pane (the first and last step always get one)."""
EMA_WEIGHT = 0.9
"""How much of the smoothed loss carries over per step (length-grouped batches make the raw loss jump)."""


@dataclass
class RunProgress:
    """Latest state of a run as its events describe it."""

    train: list[tuple[int, float]] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    last_train: dict[str, Any] | None = None
    last_val: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None
    hw: dict[str, Any] | None = None
    state: str = "queued"
    message: str = ""
    errors: list[str] = field(default_factory=list)
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_progress: dict[str, Any] | None = None
    """The latest ``eval_progress`` event of the variant now generating (None between variants,
    and once a status change ends the evaluation)."""
    checkpoints: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    log: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=500))
    """(ts, level, text) lines for the log pane."""
    log_total: int = 0
    """Lines ever added to ``log`` (a viewer shows the ones it has not shown yet)."""
    step_line_ts: float | None = None
    """Run time of the last step line in ``log``."""
    _pace: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=ETA_WINDOW))

    def reset(self) -> None:
        """Forget everything (the file was rewritten by a resume; it is replayed again)."""
        self.__init__()  # type: ignore[misc]

    def apply(self, events: Iterable[Mapping[str, Any]]) -> None:
        for ev in events:
            self._apply(ev)

    def _apply(self, ev: Mapping[str, Any]) -> None:
        kind, ts = ev["type"], float(ev["ts"])
        self.first_ts = ts if self.first_ts is None else self.first_ts
        self.last_ts = ts
        if kind == "train":
            step = int(ev["step"])
            if self.train and step <= self.train[-1][0]:
                # a resumed run re-does steps: keep the series increasing
                self.train = [p for p in self.train if p[0] < step]
                self._pace.clear()
            self.train.append((step, float(ev["loss"])))
            self.last_train = dict(ev)
            self._pace.append((ts, step))
            if (self.step_line_ts is None or ts - self.step_line_ts >= STEP_LINE_S
                    or step == int(ev["total_steps"])):
                self.step_line_ts = ts
                self._log((ts, "step", f"step {step}/{ev['total_steps']} · loss {float(ev['loss']):.4f} · "
                                       f"{float(ev['tokens_per_s']):,.0f} tok/s"))
        elif kind == "val":
            step = int(ev["step"])
            self.val = [p for p in self.val if p[0] < step] + [(step, float(ev["loss"]))]
            self.last_val = dict(ev)
        elif kind == "cost":
            self.cost = dict(ev)
        elif kind == "hw":
            self.hw = dict(ev)
        elif kind == "eval_progress":
            self.eval_progress = dict(ev)
        elif kind == "status":
            # Every status change starts or ends a stage: progress from an earlier evaluation
            # (a stopped one, or the one before a re-evaluation) is not this stage's.
            self.eval_progress = None
            self.state, self.message = ev["state"], ev.get("message") or ""
            self._log((ts, "status", f"[{self.state}] {state_detail(self.state, self.message)}".rstrip()))
        elif kind == "checkpoint":
            self.checkpoints += 1
            self._log((ts, "info", f"checkpoint {ev['path']}"))
        elif kind == "log":
            self._log((ts, ev["level"], ev["message"]))
        elif kind == "error":
            self.errors.append(ev["message"])
            self._log((ts, "error", ev["message"]))
        elif kind == "eval":
            self.evals[ev["variant"]] = {"n": ev["n"], "metrics": dict(ev["metrics"])}
            if self.eval_progress is not None and self.eval_progress["variant"] == ev["variant"]:
                self.eval_progress = None
            rates = ", ".join(f"{k} {v:.1%}" for k, v in ev["metrics"].items()
                              if isinstance(v, (int, float)) and k in ("valid", "exact", "execution"))
            self._log((ts, "info", f"eval {ev['variant']} (n={ev['n']}): {rates}"))

    def _log(self, line: tuple[float, str, str]) -> None:
        self.log.append(line)
        self.log_total += 1

    def new_log_lines(self, shown: int) -> list[tuple[float, str, str]]:
        """Lines added since a viewer had shown ``shown`` of them (at most what is kept)."""
        n = min(self.log_total - shown, len(self.log))
        return list(self.log)[len(self.log) - n:] if n > 0 else []

    # -- derived figures ------------------------------------------------------------------
    @property
    def step(self) -> int:
        return int(self.last_train["step"]) if self.last_train else 0

    @property
    def total_steps(self) -> int:
        return int(self.last_train["total_steps"]) if self.last_train else 0

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    def seconds_per_step(self) -> float | None:
        """Recent pace, from the timestamps of the last train events."""
        if len(self._pace) < 2:
            return None
        (t0, s0), (t1, s1) = self._pace[0], self._pace[-1]
        return (t1 - t0) / (s1 - s0) if s1 > s0 and t1 > t0 else None

    def eta_s(self) -> float | None:
        """Seconds of training left at the recent pace (None before two steps or after the last)."""
        pace = self.seconds_per_step()
        left = self.total_steps - self.step
        if pace is None or left < 0:
            return None
        return pace * left


def ema(points: list[tuple[int, float]], weight: float = EMA_WEIGHT) -> list[tuple[int, float]]:
    """The exponential moving average of a loss series, from its first value on:
    ``s = weight * s + (1 - weight) * loss`` at each step."""
    out: list[tuple[int, float]] = []
    smoothed: float | None = None
    for step, value in points:
        smoothed = value if smoothed is None else weight * smoothed + (1 - weight) * value
        out.append((step, smoothed))
    return out


def thin(points: list[tuple[int, float]], most: int = MAX_POINTS) -> list[tuple[int, float]]:
    """At most about ``most`` points: bucket means, keeping the last point exact."""
    if len(points) <= most:
        return points
    size = len(points) / most
    out = []
    for i in range(most):
        chunk = points[int(i * size): int((i + 1) * size)] or [points[-1]]
        out.append((chunk[-1][0], sum(v for _, v in chunk) / len(chunk)))
    out[-1] = points[-1]
    return out
