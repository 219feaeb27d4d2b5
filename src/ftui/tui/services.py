"""What the TUI asks of the world, behind one object so tests can hand it fakes.

Token counting needs a tokenizer (transformers), which the TUI process must never import:
it runs ``ftui data check --json`` as a subprocess. Hardware comes from the torch-free
``ftui.core.machine``. Runs start and stop through ``ftui.runner.launch`` (a detached
process; nothing here trains).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import ftui
from ftui.core.errors import FtuiError
from ftui.core.machine import Machine, detect
from ftui.core.runs import Run


class TokenCountError(FtuiError):
    """Token statistics could not be had (no tokenizer, the subprocess failed)."""


def count_tokens(*, preset: str | None = None, file: Path | None = None, task: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False, timeout_s: float = 300.0) -> dict[str, Any]:
    """``ftui data check ... --json`` in a subprocess: the report, with token statistics."""
    cmd = [sys.executable, "-m", "ftui", "data", "check", "--json"]
    if file is not None:
        cmd += [str(file)]
    if preset is not None:
        cmd += ["--preset", preset]
    if task is not None and preset is None:
        cmd += ["--task", task]
    root = str(Path(ftui.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None:
            if cancelled() or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise TokenCountError("token count cancelled" if cancelled() else "token count timed out")
            time.sleep(0.1)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    try:
        report = json.loads(out)
    except ValueError:
        lines = [line for line in (err or "").strip().splitlines() if line.strip()]
        raise TokenCountError(lines[-1] if lines else f"ftui data check exited {proc.returncode}") from None
    if not isinstance(report, dict):
        raise TokenCountError("ftui data check printed something unexpected")
    return report


def launch_run(run: Run) -> int:
    from ftui.runner.launch import launch  # stdlib and core only; no ML imports

    return launch(run)


def resume_run(run: Run) -> int:
    from ftui.runner.launch import launch

    return launch(run, resume=True)


def stop_run(run: Run) -> str:
    """Ask the runner to stop after its current step (the stop file); returns at once.

    The viewer that asked sends SIGTERM after ``STOP_GRACE_S`` if the runner is still going
    (see the Training screen); a blocking wait here would hold up quitting the app.
    """
    from ftui.runner.launch import request_stop

    return request_stop(run, wait=False)


@dataclass
class Services:
    """The TUI's side effects. The defaults are the real ones."""

    count_tokens: Callable[..., dict[str, Any]] = count_tokens
    detect_machine: Callable[[], Machine] = detect
    launch: Callable[[Run], int] = launch_run
    resume: Callable[[Run], int] = resume_run
    stop: Callable[[Run], str] = stop_run
    poll_s: float = 0.25
    """How often a watched run's directory is read."""
