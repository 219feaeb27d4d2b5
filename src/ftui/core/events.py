"""The event schema of ``events.jsonl``: one module for the writer and every reader.

Each line is one JSON object with ``v`` (schema version), ``ts`` (Unix seconds), ``type``,
and the fields of that type. The writer flushes per line; the tail reader keeps a partial
last line for the next read, so a viewer never misreads a line the runner is still writing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

SCHEMA_VERSION = 1

STATES = ("queued", "starting", "running", "evaluating", "succeeded", "failed", "cancelled")
TERMINAL_STATES = ("succeeded", "failed", "cancelled")
LOST = "lost"
"""Not written by anyone: what viewers call a run whose runner stopped heartbeating."""
MISSING = "missing"
"""Not written by anyone: what a viewer calls a run whose directory was removed while it watched."""


def state_detail(state: str, message: str | None) -> str:
    """A status message as shown after its state, without the state's word again. The runner's
    messages read on their own (``ftui show`` prints one alone): "evaluating base, kshot" while
    evaluating, which after the state would read "evaluating evaluating base, kshot"."""
    text = (message or "").strip()
    if text == state:
        return ""
    return text[len(state):].lstrip() if text.startswith(state + " ") else text


_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_STR = (str,)
_OPT_STR = (str, type(None))

# type -> {field: (allowed types, required)}
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "status": {"state": (_STR, True), "message": (_OPT_STR, False)},
    "train": {
        "step": ((int,), True),
        "total_steps": ((int,), True),
        "epoch": (_NUM, True),
        "loss": (_NUM, True),
        "lr": (_OPT_NUM, True),
        "tokens": ((int,), True),
        "tokens_per_s": (_NUM, True),
        "token_accuracy": (_OPT_NUM, False),
    },
    # A local run's val events also carry the best pass so far and the passes since it that
    # did not improve on it (core.early_stopping: early stopping, the weights a run keeps).
    # ``rows``: the validation rows the loss was computed on (local: ``val_rows`` of the split).
    "val": {"step": ((int,), True), "loss": (_NUM, True), "token_accuracy": (_OPT_NUM, False),
            "best_step": ((int,), False), "best_loss": (_OPT_NUM, False), "since_best": ((int,), False),
            "rows": ((int,), False)},
    "cost": {"usd": (_NUM, True), "projected_usd": (_OPT_NUM, False), "basis": (_STR, True)},
    # Written and read back as core.machine.HwReading; each ``gpus`` entry is a core.machine.Gpu
    # (index, name, mem_total, mem_used, util, power_w). ``gpu_name`` prices the GPU hours.
    # A local training's hw events also carry ``method``, ``trainable_params`` and
    # ``total_params`` (parameters of the model being trained) and ``peak_mem_bytes`` (the
    # training process's peak so far: CUDA memory allocated on a GPU, else the peak RSS) and
    # ``peak_rss`` (bytes, its peak resident set so far, on every device), and ``processes``
    # (training processes, one per device, whose tokens the train events' tokens_per_s counts).
    # ``threads``: the compute threads the process uses (set by the runner, core.devices).
    "hw": {
        "threads": (_OPT_NUM, False),
        "method": (_OPT_STR, False),
        "trainable_params": (_OPT_NUM, False),
        "total_params": (_OPT_NUM, False),
        "peak_mem_bytes": (_OPT_NUM, False),
        "peak_rss": (_OPT_NUM, False),
        "processes": ((int, type(None)), False),
        "gpu_name": (_OPT_STR, False),
        "gpu_util": (_OPT_NUM, False),
        "gpu_mem_used": (_OPT_NUM, False),
        "gpu_mem_total": (_OPT_NUM, False),
        "gpu_power_w": (_OPT_NUM, False),
        "gpus": ((list, type(None)), False),
        "cpu_percent": (_OPT_NUM, False),
        "rss_bytes": (_OPT_NUM, False),
        "ram_total_bytes": (_OPT_NUM, False),
    },
    "checkpoint": {"step": ((int,), True), "path": (_STR, True)},
    "log": {"level": (_STR, True), "message": (_STR, True)},
    "eval": {"variant": (_STR, True), "n": ((int,), True), "metrics": ((dict,), True)},
    # While a variant is generating: ``done`` of ``total`` held-out examples answered; the rate
    # and the ETA come from the variant's own elapsed time (null before the first answer).
    "eval_progress": {
        "variant": (_STR, True),
        "done": ((int,), True),
        "total": ((int,), True),
        "examples_per_s": (_OPT_NUM, True),
        "eta_s": (_OPT_NUM, True),
    },
    "error": {"message": (_STR, True)},
}
EVENT_TYPES = tuple(SCHEMA)


class EventSchemaError(ValueError):
    """An event does not match the schema (a bug in the writer, or a damaged line)."""


def validate(event: Mapping[str, Any]) -> None:
    """Raise EventSchemaError naming the first field that does not fit."""
    kind = event.get("type")
    if kind not in SCHEMA:
        raise EventSchemaError(f"unknown event type {kind!r}")
    if not isinstance(event.get("ts"), _NUM) or not isinstance(event.get("v"), int):
        raise EventSchemaError(f"{kind} event: 'v' and 'ts' must be numbers")
    for name, (types, required) in SCHEMA[kind].items():
        if name not in event:
            if required:
                raise EventSchemaError(f"{kind} event: missing '{name}'")
            continue
        value = event[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise EventSchemaError(f"{kind} event: '{name}' has the wrong type ({type(value).__name__})")
    if kind == "status" and event["state"] not in STATES:
        raise EventSchemaError(f"status event: unknown state {event['state']!r}")
    if kind == "eval_progress" and not 0 <= event["done"] <= event["total"]:
        raise EventSchemaError(f"eval_progress event: done {event['done']} is not within 0..total {event['total']}")


def make_event(kind: str, *, ts: float | None = None, **fields: Any) -> dict[str, Any]:
    """A validated event dict of type ``kind``."""
    event = {"v": SCHEMA_VERSION, "ts": round(time.time() if ts is None else ts, 3), "type": kind, **fields}
    validate(event)
    return event


class EventWriter:
    """Appends events to ``events.jsonl``, one line each, flushed per line. Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file = self._open()
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def _open(self):
        file = open(self.path, "a", encoding="utf-8")
        # A runner killed mid-write leaves a partial line; end it so the next event is whole.
        if file.tell() > 0:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    file.write("\n")
        return file

    def reopen(self) -> None:
        """Write to the file now at ``path`` (after it was replaced by a rewrite)."""
        with self._lock:
            self._file.close()
            self._file = self._open()

    def add_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Hand each event to ``listener`` once it is in the file (the runner's trackers), in the
        file's order. It must return at once (queue the event); one that raises is dropped."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = make_event(kind, **fields)
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # noqa: BLE001 - a viewer of the stream never stops the writer
                    self._listeners.remove(listener)
        return event

    def sync(self) -> None:
        """Force the lines to disk (before a status change that others act on)."""
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class TailState:
    offset: int = 0
    partial: bytes = b""
    bad_lines: int = 0


class EventTail:
    """Reads new complete lines of ``events.jsonl`` on each ``read()``; replays from the start.

    A trailing line without its newline is kept back until it is complete. Lines that are not
    valid events (damaged, or from a newer schema) are counted in ``bad_lines`` and skipped.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.state = TailState()

    @property
    def bad_lines(self) -> int:
        return self.state.bad_lines

    def read(self, max_bytes: int | None = 8 << 20) -> list[dict[str, Any]]:
        """New complete events since the last call (at most ``max_bytes`` read; None: all)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.state.offset)
                chunk = f.read(-1 if max_bytes is None else max_bytes)
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self.state.offset += len(chunk)
        data = self.state.partial + chunk
        *lines, self.state.partial = data.split(b"\n")
        events = []
        for raw in lines:
            if not raw.strip():
                continue
            event = parse_line(raw)
            if event is None:
                self.state.bad_lines += 1
            else:
                events.append(event)
        return events


def parse_line(raw: bytes | str) -> dict[str, Any] | None:
    """One event from one complete line, or None when the line is not a valid event."""
    try:
        event = json.loads(raw)
        if not isinstance(event, dict):
            return None
        validate(event)
    except (ValueError, UnicodeDecodeError):
        return None
    return event


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Every complete, valid event in the file."""
    return EventTail(path).read(max_bytes=None)


def drop_events_after(path: Path, step: int) -> int:
    """Remove step events (train, val, checkpoint) past ``step``: a resume re-does those steps.

    The only rewrite of the append-only log, made by the runner before it appends again, so
    the finished log holds every step exactly once. Returns how many events were dropped.
    """
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for event in read_events(path):
        if event["type"] in ("train", "val", "checkpoint") and event["step"] > step:
            dropped += 1
            continue
        kept.append(event)
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for event in kept:
                f.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return dropped
