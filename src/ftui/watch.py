"""Following a run from the command line: progress lines from its events, until it ends."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from ftui.core.events import EventTail
from ftui.core.runs import Run
from ftui.runner.launch import is_active

POLL_S = 0.5


def describe(event: dict[str, Any]) -> str | None:
    """One progress line for an event (None for events not worth a line)."""
    kind = event["type"]
    if kind == "train":
        lr = f"  lr {event['lr']:.2e}" if event.get("lr") is not None else ""
        return (f"step {event['step']}/{event['total_steps']}  epoch {event['epoch']:.2f}  "
                f"loss {event['loss']:.4f}{lr}  {event['tokens_per_s']:.0f} tok/s")
    if kind == "val":
        acc = event.get("token_accuracy")
        return f"validation at step {event['step']}: loss {event['loss']:.4f}" + (
            f", token accuracy {acc:.1%}" if acc is not None else "")
    if kind == "status":
        return f"[{event['state']}] {event.get('message') or ''}".rstrip()
    if kind == "checkpoint":
        return f"checkpoint saved: {event['path']}"
    if kind == "eval":
        m = event["metrics"]
        return f"eval {event['variant']} (n={event['n']}): " + ", ".join(f"{k} {v:.1%}" for k, v in m.items())
    if kind in ("log", "error"):
        level = event.get("level", "error")
        return f"{level}: {event['message']}"
    return None


def follow(run: Run, *, out: TextIO = sys.stdout, quiet: bool = False,
           sleep: Callable[[float], None] = time.sleep) -> str:
    """Print progress until the run is no longer active; returns its final state."""
    tail = EventTail(run.events_path)

    def show_new() -> None:
        for event in tail.read():
            line = describe(event)
            if line and not quiet:
                print(line, file=out, flush=True)

    while True:
        show_new()
        state = run.status()["state"]
        if not is_active(state):
            show_new()  # the last lines, written just before the state changed
            return state
        sleep(POLL_S)
