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
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence, TextIO

from ftui.core.backends import backend as backend_facts, backend_names, spend_gate
from ftui.core.config import EvalSettings, SplitSpec
from ftui.core.errors import ConfigError
from ftui.core.runs import Run, is_active
from ftui.core.scoring import VARIANTS
from ftui.core.study import Member, Study, create_study, learning_rate, method_of, parse_models
from ftui.core.sweep import budget_verdict, combination_text
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
                methods: Sequence[str] = (), grid: Sequence[str] = (), budget_minutes: float | None = None) -> Study:
    """Check every run's settings (and ask before spending), then create the runs and the study.

    ``methods``: one run per training method for each backend that has them (its ``method``
    setting; the other settings and the split the same), base and k-shot evaluated in the
    first of them only. ``grid`` (``KEY=V1,V2`` items): a sweep (``start_sweep``)."""
    from ftui.core.request import RunRequest, prepare_run, resolve_request

    unknown = [b for b in backends if b not in backend_names()]
    if unknown or not backends:
        raise ConfigError(f"--backends: choose from {', '.join(backend_names())}; got {','.join(backends) or 'nothing'}")
    methods = list(dict.fromkeys(methods))
    _check_methods(methods, backends, overrides)
    if grid or budget_minutes is not None:
        return start_sweep(preset=preset, data=data, task=task, backends=backends, models=models,
                           overrides=overrides, hub=hub, fields=fields, methods=methods, grid=grid,
                           budget_minutes=budget_minutes)
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
    return _with_settings(req, {"method": method}, flag=f"--methods {method}")


def _with_settings(req: "RunRequest", settings: Mapping[str, str], *, flag: str) -> tuple["RunRequest", "Resolved"]:
    """The request with ``settings`` (key -> value) set as ``--set`` would set them, labelled by
    their values. A refusal names ``flag`` (the option that asked for them) instead of ``--set``:
    with the one item at fault where the message names it (``--grid lora_r=abc: ...``)."""
    from ftui.core.request import resolve_request

    items = {k: f"{k}={v}" for k, v in settings.items()}
    with_settings = dataclasses.replace(req, overrides=[*req.overrides, *items.values()])
    try:
        resolved = resolve_request(with_settings)
    except ConfigError as exc:  # the rest resolved without them: these settings are what does not fit
        message, where = str(exc), flag
        for k, item in items.items():
            for prefix in (f"--set {item}: ", f"--set {k}: "):
                if message.startswith(prefix):
                    message = message.removeprefix(prefix)
                    where = flag.split(" ")[0] + f" {item}" if len(items) > 1 else flag
        raise ConfigError(f"{where}: {message}") from None
    return with_settings, dataclasses.replace(resolved, label="-".join([resolved.label, *settings.values()]))


def start_sweep(*, preset: str | None, data: Path | None, task: str | None, backends: Sequence[str],
                models: Sequence[str], overrides: Sequence[str], hub: bool, fields: Sequence[str],
                methods: Sequence[str], grid: Sequence[str], budget_minutes: float | None) -> Study:
    """A sweep: one local run per combination of ``grid`` (``--methods`` adds a ``method`` axis),
    each on the same split; every combination is checked as ``--set`` checks a value before
    any run exists. Its runs evaluate on their validation rows; a study without them is refused."""
    from ftui.core.request import RunRequest, prepare_run
    from ftui.core.sweep import VAL, Sweep, combination_text, combinations, parse_grid

    if not grid:
        raise ConfigError("--budget-minutes limits a sweep: give the settings to sweep with --grid KEY=V1,V2")
    if budget_minutes is not None and budget_minutes <= 0:
        raise ConfigError(f"--budget-minutes: expected minutes above 0, got {budget_minutes:g}")
    remote = [b for b in backends if backend_facts(b).remote]
    if remote or len(backends) != 1:
        raise ConfigError(f"--grid sweeps the runs of one backend that trains on this machine; got --backends "
                          f"{','.join(backends)} ({' and '.join(remote) or 'several'}): run the others as a study "
                          "of their own")
    name = backends[0]
    axes = parse_grid(grid)
    pairs = parse_models(models, backends)
    if len(pairs) > 1:
        raise ConfigError("--grid with several --models: sweep the model as a setting instead, "
                          f"--grid model={','.join(m for _, m in pairs if m)}")
    own = overrides_for(name, overrides)
    for key, _ in axes:
        section = key.split(".", 1)[0] if "." in key else ""
        if section in backend_names() and section != name:
            raise ConfigError(f"--grid {key}: the sweep's runs are {name} runs")
        bare = key.split(".", 1)[1] if key.split(".", 1)[0] in (name, "eval") and "." in key else key
        if any(item.split("=", 1)[0].strip() in (key, bare, f"{name}.{bare}", f"eval.{bare}") for item in own):
            raise ConfigError(f"--grid {key} and --set {key}=... both set {bare}: give one of them")
        if bare == "method" and methods:
            raise ConfigError("--methods and --grid method=... both choose the method: give one of them")
    if methods:
        axes.insert(0, ("method", list(methods)))
    [(_, model)] = pairs
    req = RunRequest(preset=preset, data=data, task=task, backend=name, model=model, overrides=own, hub=hub,
                     fields=tuple(fields))
    planned = [(combo, *_with_settings(req, combo, flag=f"--grid {combination_text(combo)}"))
               for combo in combinations(axes)]  # every bad value fails here, before anything is written
    if not planned[0][2].splits["val"]:
        raise ConfigError("a sweep chooses by the validation split, and these runs have none: give some with "
                          "--set split.val=N (or a fraction); the test split never takes part in the choice")
    runs, combos = [], {}
    for combo, with_settings, resolved in planned:
        run = prepare_run(with_settings, resolved)
        run.add_heldout(VAL, run.examples("val"))
        runs.append(run)
        combos[run.id] = combo
    label = preset or (data.stem if data else "study")
    return create_study(preset=preset, label=f"{label}-sweep", runs=runs, combos=combos,
                        variants={r.id: ["finetuned"] for r in runs},
                        sweep=Sweep(keys=tuple(k for k, _ in axes), budget_minutes=budget_minutes))


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
    on this machine one at a time) and wait for all of them; returns run id -> final state.
    A sweep stops launching where its budget ends, then evaluates its best run on the test split."""
    runs = study.runs()
    remote = {r.id: backend_facts(r.spec.backend).remote for r in runs}
    members = {m.id: m for m in study.members()}
    for run in runs:
        if remote[run.id]:
            _launch_if_fresh(study, run, members[run.id], out)
    last_note = 0.0
    for run in runs:
        if remote[run.id]:
            continue
        _launch_if_fresh(study, run, members[run.id], out)
        while is_active(run.status()["state"]):
            if time.monotonic() - last_note > 30:
                last_note = time.monotonic()
                _note(runs, out, members)
            sleep(poll_s)
    for run, missing in _untrained_left(study):  # its first run failed before evaluating them
        _launch_untrained(study, run, missing, out)
        while is_active(run.status()["state"]):
            sleep(poll_s)
    winner = _launch_winner(study, out) if study.sweep is not None else None
    while any(is_active(r.status()["state"]) for r in runs):
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            _note(runs, out, members)
        sleep(poll_s)
    if winner is not None and "finetuned" not in winner.eval_metrics():
        print(f"the test evaluation of {winner.id} did not finish ({winner.status()['state']}): "
              f"ftui eval {winner.id} --variant finetuned", file=out, flush=True)
    return {r.id: r.status()["state"] for r in runs}


def _spent_minutes(study: Study) -> list[float]:
    """Training plus evaluation minutes of each of the sweep's runs that a runner worked on and that ended."""
    skipped = study.sweep.skipped if study.sweep else {}
    spent = []
    for run in study.runs():
        if run.id in skipped or "pid" not in run.status() or run.active():
            continue
        info = run.summary()
        if info["train_s"] is not None:
            spent.append(((info["train_s"] or 0.0) + (info["eval_s"] or 0.0)) / 60)
    return spent


def _skip(study: Study, run: Run, why: str, out: TextIO) -> None:
    """Leave ``run`` unlaunched for good: ``cancelled`` with the reason, and in the sweep's list."""
    sweep = study.sweep
    study.write_sweep(dataclasses.replace(sweep, skipped={**sweep.skipped, run.id: why}))
    run.write_status("cancelled", message=f"not started: {why}", ended=time.time())
    combo = next((m.settings for m in study.members() if m.id == run.id), {})
    print(f"skipped {run.id} ({combination_text(combo)}): {why}", file=out, flush=True)


def _launch_winner(study: Study, out: TextIO) -> Run | None:
    """Once every run of the sweep has ended: the best by validation metric, evaluated (fine-tuned,
    base and k-shot) on the test split, once. Recorded as the winner under the lock, so a driver
    that picks the study up again launches it no second time."""
    from ftui.core.study import study_table

    with _locked(study):
        sweep = study.sweep
        runs = {r.id: r for r in study.runs()}
        if sweep.winner is not None:
            return runs.get(sweep.winner)
        best = study_table(study)["sweep"]["best"]
        if best is None:
            print("no run of the sweep has a validation metric: nothing to evaluate on the test split",
                  file=out, flush=True)
            return None
        winner = runs[best]
        launch(winner, eval_only=True, variants=list(VARIANTS))
        study.write_sweep(dataclasses.replace(sweep, winner=best))
    combo = next(m.settings for m in study.members() if m.id == best)
    print(f"best by validation: {combination_text(combo)} ({best}); evaluating it, base and k-shot on the "
          "test split", file=out, flush=True)
    return winner


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


def _launch_if_fresh(study: Study, run: Run, member: Member, out: TextIO) -> None:
    """Launch ``run`` (evaluating its member's variants; none named: all) if it was created and
    never launched. Two drivers of one study (say, a detached one and ``ftui study ID`` in a
    terminal) both reach the same run when the one before it ends: checking and launching
    under the lock lets only the first launch it. A sweep's run past the budget is skipped."""
    with _locked(study):
        st = run.status()
        if st["state"] != "queued" or "pid" in st:
            return
        if member.heldout:  # a sweep's run: the budget, then its evaluation on the validation rows
            why = budget_verdict(study.sweep.budget_minutes, _spent_minutes(study))
            if why is not None:
                _skip(study, run, why, out)
                return
            limit = run.spec.eval.limit or None
            launch(run, variants=member.variants, heldout=member.heldout, limit=limit)
        else:
            launch(run, variants=member.variants)  # writes the runner's pid into status.json before returning
    method = method_of(run)
    what = combination_text(member.settings) if member.settings else (method or "")
    print(f"started {run.id} ({run.spec.backend}, {run.spec.model}{f', {what}' if what else ''})",
          file=out, flush=True)


def detach_study(study: Study, *, out: Path | None = None) -> int:
    """Start ``ftui study ID`` detached, as a run's runner is, with its output appended to
    ``study.log``; returns its pid."""
    cmd = [sys.executable, "-m", "ftui", "study", study.id]
    cmd += ["--out", str(out.resolve())] if out is not None else []
    return start_detached(cmd, log=study.dir / "study.log", cwd=study.dir)


def _note(runs: Sequence[Run], out: TextIO, members: Mapping[str, Member] | None = None) -> None:
    methods = {r.id: method_of(r) for r in runs}
    named = len(set(methods.values()) - {None}) > 1  # a study of methods: say which run is which
    parts = []
    for r in runs:
        info = r.summary()
        step = f" step {info['step']}/{info['total_steps']}" if info.get("step") else ""
        combo = members[r.id].settings if members and r.id in members else {}
        which = (",".join(combo.values()) if combo else  # a sweep's run: its values, in the grid's order
                 f"{r.spec.backend}/{methods[r.id]}" if named and methods[r.id] else r.spec.backend)
        parts.append(f"{which}:{info['status']}{step}")
    print("  " + "; ".join(parts), file=out, flush=True)
