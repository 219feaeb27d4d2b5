"""Starting, watching and stopping the detached runner from a viewer (CLI or TUI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import ftui

from ftui.core.backends import backend
from ftui.core.devices import device_env, entitled_threads, resolve_devices
from ftui.core.runs import Run, is_active
from ftui.runner.devicequeue import TICKET_ENV, take_ticket

STOP_GRACE_S = 60.0
"""How long a viewer (``ftui cancel``, the TUI) waits for the runner to finish its step before
sending SIGTERM."""


def processes(run: Run) -> int:
    """Training processes on this machine for the run, as its backend counts them (the local
    backend: ``num_processes``, or one per visible GPU). Found without importing torch."""
    return backend(run.spec.backend).processes(run.spec)


def runner_command(run: Run, *, eval_only: bool = False) -> list[str]:
    """``python -m ftui.runner RUN_DIR``, through torchrun when training takes several processes
    (or machines). Evaluation alone always runs in one process."""
    nproc = 1 if eval_only else processes(run)
    nnodes = 1 if eval_only else int(run.spec.setting("nnodes", 1) or 1)
    if nproc == 1 and nnodes == 1:
        return [sys.executable, "-m", "ftui.runner", str(run.dir)]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1:
        cmd += ["--standalone"]
    else:
        cmd += [f"--nnodes={nnodes}", "--node-rank=0", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={run.spec.setting('rdzv_endpoint')}", f"--rdzv-id={run.id}"]
    return cmd + ["-m", "ftui.runner", str(run.dir)]


def launch(run: Run, *, resume: bool = False, eval_only: bool = False,
           variants: Sequence[str] = (), limit: int | None = None, heldout: str = "") -> int:
    """Start the runner in its own session (it outlives this terminal); returns its pid."""
    cmd = runner_command(run, eval_only=eval_only)
    cmd += ["--resume"] if resume else []
    cmd += ["--eval-only"] if eval_only else []
    for v in variants:
        cmd += ["--variant", v]
    cmd += ["--limit", str(limit)] if limit else []
    cmd += ["--heldout", heldout] if heldout else []
    previous = run.status()["state"]
    run.stop_path.unlink(missing_ok=True)
    env, ticket = {}, None
    if uses_local_devices(run):
        devices = resolve_devices(run.spec.setting("devices", ()) or ())
        env = device_env(devices, threads=entitled_threads(devices, processes=1 if eval_only else processes(run)))
        # In line now, in the order of launches; the runner inherits the held ticket.
        ticket = take_ticket(run.id, devices.keys)
        env[TICKET_ENV] = str(ticket.path)
    try:
        pid = start_detached(cmd, log=run.dir / "runner.log", cwd=run.dir, env=env,
                             pass_fds=() if ticket is None or ticket.fd is None else (ticket.fd,))
    finally:
        if ticket is not None and ticket.fd is not None:
            os.close(ticket.fd)  # the runner holds it now (or, if it did not start, nobody)
    # Record the pid at once, so a viewer can tell "starting" from "never started".
    run.write_status("queued", message="runner started", pid=pid, previous_state=previous)
    return pid


def uses_local_devices(run: Run) -> bool:
    """The run computes on this machine (it waits for its devices in the queue); a backend that
    trains elsewhere (OpenAI) never waits."""
    return not backend(run.spec.backend).remote


def child_env() -> dict[str, str]:
    """The environment for a child process that imports the same ftui as this one, wherever
    it was imported from."""
    package_root = str(Path(ftui.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}


def start_detached(cmd: Sequence[str], *, log: Path, cwd: Path, env: Mapping[str, str] | None = None,
                   pass_fds: Sequence[int] = ()) -> int:
    """Start ``cmd`` in its own session (it outlives this terminal and this process), output
    appended to ``log``; returns its pid. ``env``: added to this process's environment."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, pass_fds=tuple(pass_fds), cwd=cwd,
                                env={**child_env(), **(env or {})})
    return proc.pid


def request_stop(run: Run, *, grace_s: float = STOP_GRACE_S, wait: bool = True,
                 cancelled: Callable[[], bool] = lambda: False, poll_s: float = 0.2) -> str:
    """Write the stop file; after ``grace_s`` send SIGTERM, then wait ``grace_s`` more. Returns the
    state reached. The one stop-then-SIGTERM of every viewer: blocking, so the TUI calls it from
    a worker thread; ``cancelled`` (the worker's flag) ends the wait early, e.g. when the app quits.
    ``wait=False``: the stop file only."""
    run.stop_path.touch()
    if not wait:
        return run.status()["state"]
    deadline = time.monotonic() + grace_s
    signalled = False
    while True:
        st = run.status()
        if not is_active(st["state"]) or cancelled():
            return st["state"]
        if time.monotonic() > deadline and not signalled:
            pid = st.get("pid")
            if isinstance(pid, int):
                try:
                    os.kill(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
            signalled = True
            deadline = time.monotonic() + grace_s
        elif time.monotonic() > deadline and signalled:
            return st["state"]
        time.sleep(poll_s)
