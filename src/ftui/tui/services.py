"""What the TUI asks of the world, behind one object so tests can hand it fakes.

Token counting needs a tokenizer (transformers), which the TUI process must never import:
it runs ``ftui data check --json`` as a subprocess. Hardware comes from the torch-free
``ftui.core.machine``. Runs start and stop through ``ftui.runner.launch`` (a detached
process; nothing here trains). A study starts through ``ftui study ... --detach``, whose
checks (settings, the OpenAI pre-flight) need the same tokenizers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ftui.core.errors import FtuiError
from ftui.core.machine import Machine, detect
from ftui.core.runs import Run
from ftui.runner.launch import child_env  # stdlib and core only; no ML imports


class TokenCountError(FtuiError):
    """Token statistics could not be had (no tokenizer, the subprocess failed)."""


class StudyStartError(FtuiError):
    """``ftui study --detach`` refused (a bad setting, no API key, over budget) or failed."""


def _last_line(text: str | None, fallback: str) -> str:
    """The CLI's error paragraph (``ftui: error: ...``), else the last line it wrote."""
    text = (text or "").strip()
    if "ftui: error: " in text:
        return text.rsplit("ftui: error: ", 1)[1].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else fallback


def count_tokens(*, preset: str | None = None, file: Path | None = None, task: str | None = None,
                 fields: Sequence[str] = (), cancelled: Callable[[], bool] = lambda: False,
                 timeout_s: float = 300.0) -> dict[str, Any]:
    """``ftui data check ... --json`` in a subprocess: the report, with token statistics."""
    cmd = [sys.executable, "-m", "ftui", "data", "check", "--json"]
    if file is not None:
        cmd += [str(file)]
    if preset is not None:
        cmd += ["--preset", preset]
    if task is not None and preset is None:
        cmd += ["--task", task]
    for item in fields:
        cmd += ["--field", item]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env(), text=True)
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
        raise TokenCountError(_last_line(err, f"ftui data check exited {proc.returncode}")) from None
    if not isinstance(report, dict):
        raise TokenCountError("ftui data check printed something unexpected")
    return report


def start_study(*, preset: str, backends: Sequence[str], models: Sequence[str] = (), methods: Sequence[str] = (),
                overrides: Sequence[str] = (), yes: bool = False, timeout_s: float = 600.0,
                grid: Sequence[str] = (), budget_minutes: float | None = None) -> dict[str, Any]:
    """``ftui study --preset P ... --detach --json`` in a subprocess: ``{"id", "dir", "runs", "pid"}``.

    It checks every run's settings (and the OpenAI budget: ``yes`` once the person agreed to
    spend), creates the study and leaves its driver running in the background.
    """
    cmd = [sys.executable, "-m", "ftui", "study", "--preset", preset, "--backends", ",".join(backends),
           "--detach", "--json"]
    cmd += ["--models", ",".join(models)] if models else []
    cmd += ["--methods", ",".join(methods)] if methods else []
    for item in grid:
        cmd += ["--grid", item]
    cmd += ["--budget-minutes", f"{budget_minutes:g}"] if budget_minutes is not None else []
    for item in overrides:
        cmd += ["--set", item]
    cmd += ["--yes"] if yes else []
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=child_env(),
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise StudyStartError(f"ftui study did not answer within {timeout_s:g} s") from None
    if proc.returncode != 0:
        raise StudyStartError(_last_line(proc.stderr, f"ftui study exited {proc.returncode}"))
    try:
        started = json.loads(proc.stdout)
    except ValueError:
        raise StudyStartError("ftui study printed something unexpected") from None
    return started


def launch_run(run: Run) -> int:
    from ftui.runner.launch import launch  # stdlib and core only; no ML imports

    return launch(run)


def resume_run(run: Run) -> int:
    from ftui.runner.launch import launch

    return launch(run, resume=True)


def stop_run(run: Run) -> str:
    """Ask the runner to stop after its current step, SIGTERM it after the grace period, and
    return the state reached (``launch.request_stop``). Blocking: the app calls it from a worker
    thread (``FtuiApp.stop_run``), whose cancellation (quitting) ends the wait."""
    from textual.worker import NoActiveWorker, get_current_worker

    from ftui.runner.launch import request_stop

    try:
        worker = get_current_worker()
    except NoActiveWorker:  # called outside a worker: just the stop file, never block the UI
        return request_stop(run, wait=False)
    return request_stop(run, cancelled=lambda: worker.is_cancelled)


def start_inference(run: Run, on_event: Callable[[dict[str, Any]], None]) -> Any:
    """The Playground's inference process for ``run`` (``ftui.runner.serve``), started; it ends
    with ``close()`` or with this process."""
    from ftui.runner.serve_client import InferenceServer  # stdlib and core only; no ML imports

    server = InferenceServer(run, on_event)
    server.start()
    return server


@dataclass
class Services:
    """The TUI's side effects. The defaults are the real ones."""

    count_tokens: Callable[..., dict[str, Any]] = count_tokens
    detect_machine: Callable[[], Machine] = detect
    launch: Callable[[Run], int] = launch_run
    resume: Callable[[Run], int] = resume_run
    stop: Callable[[Run], str] = stop_run
    start_study: Callable[..., dict[str, Any]] = start_study
    start_inference: Callable[..., Any] = start_inference
    poll_s: float = 0.25
    """How often a watched run's directory is read."""
