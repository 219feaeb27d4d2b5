"""Running a study: one run per backend and model on the same data, then the comparison table.

Local runs go one after another (they share this machine); OpenAI runs start at once (the
work happens remotely). Every run is an ordinary detached run: Ctrl-C stops waiting, never
the runs, and ``ftui study STUDY`` picks the study up again. ``--detach`` runs that driver
itself as a detached process (``detach_study``); drivers started twice on one study share the
work through a lock file, so no run is launched twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence, TextIO

from ftui.core.backends import backend as backend_facts, backend_names, spend_gate
from ftui.core.config import EvalSettings, SplitSpec
from ftui.core.errors import ConfigError
from ftui.core.runs import Run, is_active
from ftui.core.study import Study, create_study, parse_models
from ftui.runner.launch import launch, start_detached


def _known(backend: str) -> set[str]:
    """The settings a run of ``backend`` has: its own, eval's and the split's."""
    return {f.name for c in (backend_facts(backend).settings, EvalSettings, SplitSpec) for f in dataclasses.fields(c)}


def overrides_for(backend: str, overrides: Sequence[str]) -> list[str]:
    """The ``--set`` items that apply to ``backend``: ``NAME.x=..`` (a backend's name) to that
    backend only, ``eval.``/``split.`` and bare keys to every backend that has them."""
    names = backend_names()
    out = []
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        section, dot, name = key.partition(".")
        if dot and section in names:
            if section == backend:
                out.append(f"{name}={item.split('=', 1)[1]}" if "=" in item else item)
        elif dot or key in _known(backend):
            out.append(item)
        elif not any(key in _known(b) for b in names):
            out.append(item)  # unknown everywhere: let the settings check name it
    return out


def start_study(*, preset: str | None, data: Path | None, task: str | None, backends: Sequence[str],
                models: Sequence[str], overrides: Sequence[str], confirm: Callable[[str], bool],
                err: TextIO = sys.stderr, hub: bool = False, fields: Sequence[str] = ()) -> Study:
    """Check every run's settings (and ask before spending), then create the runs and the study."""
    from ftui.core.request import RunRequest, prepare_run, resolve_request

    unknown = [b for b in backends if b not in backend_names()]
    if unknown or not backends:
        raise ConfigError(f"--backends: choose from {', '.join(backend_names())}; got {','.join(backends) or 'nothing'}")
    planned = []
    for name, model in parse_models(models, backends):
        req = RunRequest(preset=preset, data=data, task=task, backend=name, model=model,
                         overrides=overrides_for(name, overrides), hub=hub, fields=tuple(fields))
        resolved = resolve_request(req)  # every bad setting fails here, before anything starts
        spend_gate(resolved, confirm=confirm, out=err)
        planned.append((req, resolved))
    runs = [prepare_run(req, resolved) for req, resolved in planned]
    label = preset or (data.stem if data else "study")
    return create_study(preset=preset, label=label, runs=runs)


def run_study(study: Study, *, out: TextIO = sys.stderr, poll_s: float = 2.0,
              sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Launch the study's runs that have not started (remote ones at once, the ones that train
    on this machine one at a time) and wait for all of them; returns run id -> final state."""
    runs = study.runs()
    remote = {r.id: backend_facts(r.spec.backend).remote for r in runs}
    for run in runs:
        if remote[run.id]:
            _launch_if_fresh(study, run, out)
    last_note = 0.0
    for run in runs:
        if remote[run.id]:
            continue
        _launch_if_fresh(study, run, out)
        while is_active(run.status()["state"]):
            if time.monotonic() - last_note > 30:
                last_note = time.monotonic()
                _note(runs, out)
            sleep(poll_s)
    while any(is_active(r.status()["state"]) for r in runs):
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            _note(runs, out)
        sleep(poll_s)
    return {r.id: r.status()["state"] for r in runs}


@contextlib.contextmanager
def _locked(study: Study) -> Iterator[None]:
    """Exclusive hold of the study's lock file (released when the process dies, too)."""
    with open(study.dir / "study.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _launch_if_fresh(study: Study, run: Run, out: TextIO) -> None:
    """Launch ``run`` if it was created and never launched. Two drivers of one study (say, a
    detached one and ``ftui study ID`` in a terminal) both reach the same run when the one
    before it ends: checking and launching under the lock lets only the first launch it."""
    with _locked(study):
        st = run.status()
        if st["state"] != "queued" or "pid" in st:
            return
        launch(run)  # writes the runner's pid into status.json before returning
    print(f"started {run.id} ({run.spec.backend}, {run.spec.model})", file=out, flush=True)


def detach_study(study: Study, *, out: Path | None = None) -> int:
    """Start ``ftui study ID`` detached, as a run's runner is, with its output appended to
    ``study.log``; returns its pid."""
    cmd = [sys.executable, "-m", "ftui", "study", study.id]
    cmd += ["--out", str(out.resolve())] if out is not None else []
    return start_detached(cmd, log=study.dir / "study.log", cwd=study.dir)


def _note(runs: Sequence[Run], out: TextIO) -> None:
    parts = []
    for r in runs:
        info = r.summary()
        step = f" step {info['step']}/{info['total_steps']}" if info.get("step") else ""
        parts.append(f"{r.spec.backend}:{info['status']}{step}")
    print("  " + "; ".join(parts), file=out, flush=True)
