"""Following a run from the command line: progress lines from its events, until it ends."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Mapping, TextIO

from ftui.core.events import EventTail, state_detail
from ftui.core.runs import Run, is_active
from ftui.tui.fmt import duration, rate  # a pure module: no Textual is loaded

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
        rows = f" ({event['rows']} rows)" if event.get("rows") is not None else ""
        return f"validation at step {event['step']}{rows}: loss {event['loss']:.4f}" + (
            f", token accuracy {acc:.1%}" if acc is not None else "")
    if kind == "status":
        return f"[{event['state']}] {state_detail(event['state'], event.get('message'))}".rstrip()
    if kind == "checkpoint":
        return f"checkpoint saved: {event['path']}"
    if kind == "eval_progress":
        return eval_progress_line(event)
    if kind == "eval":
        m = event["metrics"]
        return f"eval {event['variant']} (n={event['n']}): " + ", ".join(f"{k} {v:.1%}" for k, v in m.items())
    if kind in ("log", "error"):
        level = event.get("level", "error")
        return f"{level}: {event['message']}"
    return None


def eval_progress_line(progress: Mapping[str, Any]) -> str:
    """``eval finetuned 120/568 (21%), 3.1 examples/s, ETA 2m 35s`` (an event or a summary's
    ``eval_progress``)."""
    done, total = progress["done"], progress["total"]
    parts = [f"eval {progress['variant']} {done}/{total} ({done / total if total else 0:.0%})"]
    if progress.get("examples_per_s"):
        parts.append(rate(progress["examples_per_s"], "examples"))
    if progress.get("eta_s") is not None and done < total:
        parts.append(f"ETA {duration(progress['eta_s'])}")
    return ", ".join(parts)


def latest_progress_only(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` without the ``eval_progress`` ones that a later event of the batch supersedes
    (a later progress event, or the variant's result): a viewer that attaches late gets one
    progress line per read, not every line of an hour's evaluation."""
    kept: list[dict[str, Any]] = []
    later_progress, finished = False, set[str]()
    for event in reversed(list(events)):
        if event["type"] == "eval_progress":
            if later_progress or event["variant"] in finished:
                continue
            later_progress = True
        elif event["type"] == "eval":
            finished.add(event["variant"])
        kept.append(event)
    return kept[::-1]


def follow(run: Run, *, out: TextIO = sys.stdout, quiet: bool = False,
           sleep: Callable[[float], None] = time.sleep) -> str:
    """Print progress until the run is no longer active; returns its final state."""
    tail = EventTail(run.events_path)

    def show_new() -> None:
        for event in latest_progress_only(tail.read()):
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
