"""What a run's events add up to, for every viewer (the Training screen, ``Run.summary``).
Pure: no Textual, no threads.

``RunProgress.apply`` folds a batch of events (the EventTail's output) into the latest state,
so a viewer that attaches late replays the file from the start and ends where a viewer that
watched all along would be.

A run may be worked on by several runner sessions (a resume, a re-evaluation), each opened by
a ``starting`` status and closed by a terminal one (or by its last event, when its runner
died). Time between sessions is idle: neither the pace of training nor ``work_time`` counts it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ftui.core.events import TERMINAL_STATES, state_detail

ETA_WINDOW = 20
"""Intervals between train events (of one runner session each) the pace is measured over."""
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
    """(seconds, steps) between consecutive train events of one session: never across a pause."""
    _last_step_at: tuple[float, int] | None = None
    """(ts, step) of this session's last train event; None at the start of a session."""

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
                self._last_step_at = None
            self.train.append((step, float(ev["loss"])))
            self.last_train = dict(ev)
            if self._last_step_at is not None and step > self._last_step_at[1] and ts >= self._last_step_at[0]:
                self._pace.append((ts - self._last_step_at[0], step - self._last_step_at[1]))
            self._last_step_at = (ts, step)
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
            if ev["state"] == "starting":  # a new runner session: the pause before it is no step's time
                self._last_step_at = None
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
        """Recent pace, from the gaps between the last train events of the same runner session.
        Right after a resume it is the previous session's pace until this one has two steps."""
        seconds = sum(dt for dt, _ in self._pace)
        steps = sum(ds for _, ds in self._pace)
        return seconds / steps if steps and seconds > 0 else None

    def eta_s(self) -> float | None:
        """Seconds of training left at the recent pace (None before two steps of one session, or
        after the last step)."""
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


@dataclass(frozen=True)
class WorkTime:
    """Seconds a run's runners spent working on it, pauses between sessions left out."""

    train_s: float
    """Outside evaluation: starting (loading the model), training, saving; for an OpenAI run
    also the job's wait at OpenAI."""
    eval_s: float
    """In the ``evaluating`` state: generating and scoring held-out examples."""


def work_time(events: Iterable[Mapping[str, Any]], *, until: float | None = None) -> WorkTime | None:
    """What the runner sessions in ``events`` took, by stage; None when no runner ever wrote.

    A session runs from its ``starting`` status (or its first event, in a log without one) to a
    terminal status; one whose runner died ends at its last event. Time ``queued`` (waiting for the
    machine's devices) is no work and counts nowhere. ``until``: when the runner of a
    working run was last known to work (its heartbeat), so its open session counts to then.
    """
    train = evaluating = 0.0
    since: float | None = None  # start of the open session's current stretch; None between sessions
    in_eval = False
    waiting = False  # the stretch is time in the machine-wide queue (``queued``): no work
    last: float | None = None
    for ev in events:
        ts = float(ev["ts"])
        status = ev["state"] if ev["type"] == "status" else None
        # A session begins (queued, or starting) while one is open: its runner died without a last word.
        if since is not None and status in ("queued", "starting") and not waiting:
            train, evaluating = _add(train, evaluating, in_eval, (last or since) - since)
            since = None
        if since is None:
            since, in_eval, waiting = ts, False, False
        if status is not None:
            if not waiting:
                train, evaluating = _add(train, evaluating, in_eval, ts - since)
            since, in_eval, waiting = ts, status == "evaluating", status == "queued"
            if status in TERMINAL_STATES:
                since = None
        last = ts
    if last is None:
        return None
    if since is not None and not waiting:
        train, evaluating = _add(train, evaluating, in_eval, max(last, until or last) - since)
    return WorkTime(train_s=train, eval_s=evaluating)


def _add(train: float, evaluating: float, in_eval: bool, seconds: float) -> tuple[float, float]:
    seconds = max(0.0, seconds)  # a clock set back must not take time away
    return (train, evaluating + seconds) if in_eval else (train + seconds, evaluating)


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
