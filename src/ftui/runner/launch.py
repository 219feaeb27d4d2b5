"""Starting, watching and stopping the detached runner from a viewer (CLI or TUI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import ftui

from ftui.core.events import LOST, TERMINAL_STATES
from ftui.core.runs import Run

STOP_GRACE_S = 60.0
"""How long ``cancel`` waits for the runner to finish its step before sending SIGTERM."""


def launch(run: Run, *, resume: bool = False, eval_only: bool = False,
           variants: Sequence[str] = (), limit: int | None = None) -> int:
    """Start the runner in its own session (it outlives this terminal); returns its pid."""
    cmd = [sys.executable, "-m", "ftui.runner", str(run.dir)]
    cmd += ["--resume"] if resume else []
    cmd += ["--eval-only"] if eval_only else []
    for v in variants:
        cmd += ["--variant", v]
    cmd += ["--limit", str(limit)] if limit else []
    previous = run.status()["state"]
    run.stop_path.unlink(missing_ok=True)
    # The runner imports the same ftui as this process, wherever it was imported from.
    package_root = str(Path(ftui.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with open(run.dir / "runner.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, cwd=run.dir, env=env)
    # Record the pid at once, so a viewer can tell "starting" from "never started".
    run.write_status("queued", message="runner started", pid=proc.pid, previous_state=previous)
    return proc.pid


def is_active(state: str) -> bool:
    return state not in TERMINAL_STATES and state != LOST


def request_stop(run: Run, *, grace_s: float = STOP_GRACE_S, wait: bool = True) -> str:
    """Write the stop file; after ``grace_s`` send SIGTERM. Returns the state reached."""
    run.stop_path.touch()
    if not wait:
        return run.status()["state"]
    deadline = time.monotonic() + grace_s
    signalled = False
    while True:
        st = run.status()
        if not is_active(st["state"]):
            return st["state"]
        if time.monotonic() > deadline and not signalled:
            pid = st.get("pid")
            if isinstance(pid, int):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            signalled = True
            deadline = time.monotonic() + grace_s
        elif time.monotonic() > deadline and signalled:
            return st["state"]
        time.sleep(0.2)
