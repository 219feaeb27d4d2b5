"""Running a study: one run per backend and model (and per training method, ``--methods``) on
the same data, then the comparison table.

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
from typing import TYPE_CHECKING, Callable, Iterator, Sequence, TextIO

from ftui.core.backends import backend as backend_facts, backend_names, spend_gate
from ftui.core.config import EvalSettings, SplitSpec
from ftui.core.errors import ConfigError
from ftui.core.runs import Run, is_active
from ftui.core.scoring import VARIANTS
from ftui.core.study import Study, create_study, learning_rate, method_of, parse_models
from ftui.runner.launch import launch, start_detached

if TYPE_CHECKING:
    from ftui.core.request import Resolved, RunRequest


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
                err: TextIO = sys.stderr, hub: bool = False, fields: Sequence[str] = (),
                methods: Sequence[str] = ()) -> Study:
    """Check every run's settings (and ask before spending), then create the runs and the study.

    ``methods``: one run per training method for each backend that has them (its ``method``
    setting; the other settings and the split the same), base and k-shot evaluated in the
    first of them only."""
    from ftui.core.request import RunRequest, prepare_run, resolve_request

    unknown = [b for b in backends if b not in backend_names()]
    if unknown or not backends:
        raise ConfigError(f"--backends: choose from {', '.join(backend_names())}; got {','.join(backends) or 'nothing'}")
    methods = list(dict.fromkeys(methods))
    _check_methods(methods, backends, overrides)
    one_way = [b for b in backends if not backend_facts(b).methods]
    if methods and one_way:
        print(f"--methods {','.join(methods)} applies to {', '.join(b for b in backends if b not in one_way)} runs; "
              f"{', '.join(one_way)} fine-tunes its own way: one run", file=err, flush=True)
    planned = []  # (request, resolved, whether it evaluates base and k-shot)
    for name, model in parse_models(models, backends):
        req = RunRequest(preset=preset, data=data, task=task, backend=name, model=model,
                         overrides=overrides_for(name, overrides), hub=hub, fields=tuple(fields))
        if methods and backend_facts(name).methods:  # every bad setting fails here, before anything starts
            for i, method in enumerate(methods):
                planned.append((*_with_method(req, method), i == 0))
        else:
            planned.append((req, resolve_request(req), True))
    for _, resolved, _ in planned:
        spend_gate(resolved, confirm=confirm, out=err)
    _note_learning_rates([resolved for _, resolved, _ in planned], err)
    runs, variants = [], {}
    for req, resolved, untrained_too in planned:
        run = prepare_run(req, resolved)
        runs.append(run)
        if not untrained_too:
            variants[run.id] = ["finetuned"]
    label = preset or (data.stem if data else "study")
    return create_study(preset=preset, label=label, runs=runs, variants=variants)


def _check_methods(methods: Sequence[str], backends: Sequence[str], overrides: Sequence[str]) -> None:
    """``--methods`` refused before anything is read: a method no chosen backend has, no
    backend with methods, or the method also set with ``--set``."""
    if not methods:
        return
    with_methods = [b for b in backends if backend_facts(b).methods]
    if not with_methods:
        having = [b for b in backend_names() if backend_facts(b).methods]
        raise ConfigError(f"--methods: {' and '.join(backends)} fine-tune{'s' if len(backends) == 1 else ''} one "
                          f"way; methods are for {' and '.join(having)} runs (--backends {','.join([*having, *backends])})")
    for b in with_methods:
        known = backend_facts(b).methods
        wrong = [m for m in methods if m not in known]
        if wrong:
            raise ConfigError(f"--methods: unknown method {wrong[0]!r} for {b}; choose from "
                              + "; ".join(f"{m} ({why})" for m, why in known.items()))
        if any(item.split("=", 1)[0].strip() == "method" for item in overrides_for(b, overrides)):
            raise ConfigError("--methods and --set method=... both choose the method: give one of them")


def _with_method(req: "RunRequest", method: str) -> tuple["RunRequest", "Resolved"]:
    """The request with ``method=METHOD`` set as ``--set`` would set it (a method that does not go
    with the other settings is refused here, with the reason), labelled by the method."""
    from ftui.core.request import resolve_request

    prefix = f"--set method={method}: "
    with_method = dataclasses.replace(req, overrides=[*req.overrides, f"method={method}"])
    try:
        resolved = resolve_request(with_method)
    except ConfigError as exc:  # the rest resolved without it: the method is what does not fit
        raise ConfigError(f"--methods {method}: {str(exc).removeprefix(prefix)}") from None
    return with_method, dataclasses.replace(resolved, label=f"{resolved.label}-{method}")


def _note_learning_rates(resolved: Sequence["Resolved"], err: TextIO) -> None:
    """Say so when the runs of a study of methods train at different learning rates (a method
    switched on without ``learning_rate`` may bring its own): the schedule is the same, the
    rates are not."""
    rates = {}
    for r in resolved:
        method, rate = r.spec.setting("method"), r.spec.setting("learning_rate")
        if method is not None and rate is not None:
            rates.setdefault(method, rate)
    if len(set(rates.values())) > 1:
        print("learning rates: " + ", ".join(f"{m} {learning_rate(r)}" for m, r in rates.items())
              + " (--set learning_rate=X gives every method the same one)", file=err, flush=True)


def run_study(study: Study, *, out: TextIO = sys.stderr, poll_s: float = 2.0,
              sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Launch the study's runs that have not started (remote ones at once, the ones that train
    on this machine one at a time) and wait for all of them; returns run id -> final state."""
    runs = study.runs()
    remote = {r.id: backend_facts(r.spec.backend).remote for r in runs}
    variants = {m.id: m.variants for m in study.members()}
    for run in runs:
        if remote[run.id]:
            _launch_if_fresh(study, run, variants[run.id], out)
    last_note = 0.0
    for run in runs:
        if remote[run.id]:
            continue
        _launch_if_fresh(study, run, variants[run.id], out)
        while is_active(run.status()["state"]):
            if time.monotonic() - last_note > 30:
                last_note = time.monotonic()
                _note(runs, out)
            sleep(poll_s)
    for run, missing in _untrained_left(study):  # its first run failed before evaluating them
        _launch_untrained(study, run, missing, out)
        while is_active(run.status()["state"]):
            sleep(poll_s)
    while any(is_active(r.status()["state"]) for r in runs):
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            _note(runs, out)
        sleep(poll_s)
    return {r.id: r.status()["state"] for r in runs}


def _untrained_left(study: Study) -> list[tuple[Run, list[str]]]:
    """The first runs of groups of methods (one backend and model; they evaluate base and k-shot
    for the others) that failed without evaluating them, each with the variants missing."""
    members = study.members()
    relying = {(m.backend, m.model) for m in members if m.variants}
    out = []
    for m, run in zip(members, study.runs()):
        if m.variants or (m.backend, m.model) not in relying or run.status()["state"] != "failed":
            continue
        missing = [v for v in VARIANTS if v != "finetuned" and v not in run.eval_metrics()]
        if missing:
            out.append((run, missing))
    return out


def _launch_untrained(study: Study, run: Run, variants: Sequence[str], out: TextIO) -> None:
    """Evaluate ``variants`` (base, k-shot) alone on a failed run, once: under the lock, and only
    while it is still failed with them missing (another driver may have done it)."""
    with _locked(study):
        if run.status()["state"] != "failed" or all(v in run.eval_metrics() for v in variants):
            return
        launch(run, eval_only=True, variants=variants)
    print(f"evaluating {', '.join(variants)} on {run.id} (it failed before it evaluated them)", file=out, flush=True)


@contextlib.contextmanager
def _locked(study: Study) -> Iterator[None]:
    """Exclusive hold of the study's lock file (released when the process dies, too)."""
    with open(study.dir / "study.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _launch_if_fresh(study: Study, run: Run, variants: Sequence[str], out: TextIO) -> None:
    """Launch ``run`` (evaluating ``variants``; none named: all) if it was created and never
    launched. Two drivers of one study (say, a detached one and ``ftui study ID`` in a
    terminal) both reach the same run when the one before it ends: checking and launching
    under the lock lets only the first launch it."""
    with _locked(study):
        st = run.status()
        if st["state"] != "queued" or "pid" in st:
            return
        launch(run, variants=variants)  # writes the runner's pid into status.json before returning
    method = method_of(run)
    print(f"started {run.id} ({run.spec.backend}, {run.spec.model}{f', {method}' if method else ''})",
          file=out, flush=True)


def detach_study(study: Study, *, out: Path | None = None) -> int:
    """Start ``ftui study ID`` detached, as a run's runner is, with its output appended to
    ``study.log``; returns its pid."""
    cmd = [sys.executable, "-m", "ftui", "study", study.id]
    cmd += ["--out", str(out.resolve())] if out is not None else []
    return start_detached(cmd, log=study.dir / "study.log", cwd=study.dir)


def _note(runs: Sequence[Run], out: TextIO) -> None:
    methods = {r.id: method_of(r) for r in runs}
    named = len(set(methods.values()) - {None}) > 1  # a study of methods: say which run is which
    parts = []
    for r in runs:
        info = r.summary()
        step = f" step {info['step']}/{info['total_steps']}" if info.get("step") else ""
        which = f"{r.spec.backend}/{methods[r.id]}" if named and methods[r.id] else r.spec.backend
        parts.append(f"{which}:{info['status']}{step}")
    print("  " + "; ".join(parts), file=out, flush=True)
