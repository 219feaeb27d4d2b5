"""From a preset or a file plus command-line settings to a new run directory (``run.json``).

The spec made here (``core.runspec.RunSpec``) is what the runner reads.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from ftui.core.config import (
    EvalSettings,
    PromptTemplate,
    ReportSettings,
    SplitSpec,
)
from ftui.core.backends import backend, backend_names, default_backend, settings_sections
from ftui.core.data import Loaded, load_source, make_splits
from ftui.core.errors import ConfigError
from ftui.core.presets import load_preset
from ftui.core.prompts import DEFAULT_TEMPLATES
from ftui.core.runs import Run, create_run, file_sha256
from ftui.core.runspec import DataInfo, RunSpec
from ftui.core.tasks import make_task, task_names
from ftui.core.trackers import check_trackers


@dataclass
class RunRequest:
    """What a person asked for (CLI flags or the TUI's choices)."""

    preset: str | None = None
    data: Path | None = None
    task: str | None = None
    backend: str = field(default_factory=default_backend)
    model: str | None = None
    epochs: float | None = None
    max_steps: int | None = None
    overrides: Sequence[str] = field(default_factory=tuple)
    """``key=value`` settings; keys of the local/openai, eval, split or report settings."""
    hub: bool = False
    """Read the preset's hub dataset instead of its offline sample."""
    fields: Sequence[str] = field(default_factory=tuple)
    """``--field NAME=COLUMN`` items: which columns of the data hold the task's fields."""


def _sections() -> dict[str, type]:
    """``--set`` sections: every backend's settings, then eval, split and report (the trackers)."""
    return {**settings_sections(), "eval": EvalSettings, "split": SplitSpec, "report": ReportSettings}


SHARED_SECTIONS = ("eval", "split", "report")
"""Sections every backend reads; a bare ``--set KEY`` looks in the backend's, then these."""


def parse_value(raw: str, current: Any) -> Any:
    """A ``--set`` value, typed like the setting's current value."""
    text = raw.strip()
    if isinstance(current, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if isinstance(current, tuple):
        return tuple(p.strip() for p in re.split(r"[,+]", text) if p.strip())
    if text == "auto":  # openai's n_epochs, batch_size, learning_rate_multiplier
        return "auto"
    if text.lower() == "all":  # local val_rows: the whole validation split
        return "all"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        raise ValueError(f"expected a number, got {raw!r}")
    return text


def apply_overrides(settings: dict[str, Any], overrides: Sequence[str], backend: str) -> dict[str, Any]:
    """``settings`` maps section -> dataclass; returns new ones with ``key=value`` applied."""
    out = dict(settings)
    sections = _sections()
    given: set[tuple[str, str]] = set()
    pending: dict[str, dict[str, tuple[Any, str]]] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        key = key.strip()
        if "." in key:
            section, name = key.split(".", 1)
        else:
            section, name = next(((s, key) for s in (backend, *SHARED_SECTIONS)
                                  if key in {f.name for f in dataclasses.fields(sections[s])}), (backend, key))
        if section not in out or name not in {f.name for f in dataclasses.fields(sections[section])}:
            known = sorted({f.name for s in (backend, *SHARED_SECTIONS) for f in dataclasses.fields(sections[s])})
            raise ConfigError(f"--set {key}: unknown setting; known: {', '.join(known)}")
        given.add((section, name))
        current = getattr(out[section], name)
        try:
            value = parse_value(raw, current if current is not None else 0.0)
        except ValueError as exc:
            raise ConfigError(f"--set {key}: {exc}") from None
        pending.setdefault(section, {})[name] = (value, f"{key}={raw}")
    # A section's items are checked together, so their order does not matter
    # (quantization=4bit then method=lora, on a preset that fine-tunes fully).
    for section, changes in pending.items():
        try:
            out[section] = replace(out[section], **{n: v for n, (v, _) in changes.items()})
        except (TypeError, ConfigError) as exc:
            alone = [item for n, (v, item) in changes.items() if not _accepted(out[section], n, v)]
            items = alone[:1] or [item for _, item in changes.values()]
            raise ConfigError(f"--set {' --set '.join(items)}: {exc}") from None
    return _method_learning_rate(settings, out, given)


def _accepted(settings: Any, name: str, value: Any) -> bool:
    """Whether ``settings`` takes ``name=value`` on its own (to name the item a refusal is about)."""
    try:
        replace(settings, **{name: value})
    except (TypeError, ConfigError):
        return False
    return True


def _method_learning_rate(before: dict[str, Any], after: dict[str, Any], given: set[tuple[str, str]]) -> dict[str, Any]:
    """A section whose ``method`` was switched without a ``learning_rate`` gets the method's own
    rate (``config.METHOD_LEARNING_RATES``): the one it had was chosen for the other method."""
    from ftui.core.config import METHOD_LEARNING_RATES, same_rate_family

    for section, settings in after.items():
        method = getattr(settings, "method", None)
        if (section, "method") not in given or (section, "learning_rate") in given:
            continue
        if same_rate_family(method, getattr(before.get(section), "method", None)) or method not in METHOD_LEARNING_RATES:
            continue
        after[section] = replace(settings, learning_rate=METHOD_LEARNING_RATES[method])
    return after


@dataclass
class Resolved:
    """A request resolved into settings, splits and the spec ``run.json`` would freeze."""

    spec: RunSpec
    """What ``run.json`` will hold (without the id, version and time it gets when created)."""
    splits: dict[str, list]
    settings: dict[str, Any]
    template: PromptTemplate
    label: str


def resolve_request(req: RunRequest) -> Resolved:
    """Load and check the data, split it, apply the settings; nothing is written."""
    facts = backend(req.backend)  # an unknown backend fails here, naming the choices
    if req.preset:
        p = load_preset(req.preset)
        if req.task and req.task != p.task:
            raise ConfigError(f"--task {req.task} disagrees with preset '{p.name}' (task {p.task})")
        task, options, template = p.task, dict(p.task_options), p.prompt
        settings: dict[str, Any] = {**{name: p.settings_for(name) for name in backend_names()},
                                    "eval": p.eval, "split": p.split, "report": ReportSettings()}
        label = p.name
    elif req.data:
        task = req.task or "text"
        if task not in task_names():
            raise ConfigError(f"--task: unknown task '{task}'; choose one of: {', '.join(task_names())}")
        options, template = {}, DEFAULT_TEMPLATES[task]
        settings = {**{name: cls() for name, cls in settings_sections().items()},
                    "eval": EvalSettings(), "split": SplitSpec(), "report": ReportSettings()}
        p, label = None, Path(req.data).stem
    else:
        raise ConfigError("train: give --preset NAME or --data FILE")
    loaded = load_source(task=task, preset=p, data=req.data, hub=req.hub, fields=req.fields)
    source = loaded.source
    make_task(task, options)  # bad task options fail here, before anything is written
    loaded.raise_if_bad()
    flags = [facts.epochs_flag(req.epochs)] if req.epochs is not None else []
    flags += [facts.max_steps_flag(req.max_steps)] if req.max_steps is not None else []
    flags += [f"model={req.model}"] if req.model else []
    settings = apply_overrides(settings, [*flags, *req.overrides], req.backend)
    splits = make_splits(loaded, settings["split"])
    backend_settings = settings[req.backend]
    patience = getattr(backend_settings, "early_stop_patience", 0)  # a setting of the local backend only
    if patience and not splits["val"]:
        raise ConfigError(f"early_stop_patience={patience} watches the validation loss, and this run has no "
                          "validation rows: give some with --set split.val=N (or a fraction), or leave "
                          "early_stop_patience=0")
    spec = RunSpec(preset=req.preset, task=task, task_options=options, prompt=template,
                   data=_data_info(loaded, source), split=settings["split"], backend=req.backend,
                   model=backend_settings.model, hyperparameters=backend_settings, eval=settings["eval"],
                   report=settings["report"])
    if facts.preflight is not None:
        facts.preflight(spec)  # what would fail in the runner, refused before the run exists
    check_trackers(spec.report.report_to)  # a tracker library that is missing: refused now, not mid-run
    return Resolved(spec=spec, splits=splits, settings=settings, template=template, label=label)


def prepare_run(req: RunRequest, resolved: Resolved | None = None) -> Run:
    """A new run directory, queued: ``resolve_request`` frozen into ``run.json`` and the splits."""
    resolved = resolved or resolve_request(req)
    return create_run(label=resolved.label, spec=resolved.spec, splits=resolved.splits)


def _data_info(loaded: Loaded, source: str) -> DataInfo:
    path = Path(source)
    return DataInfo(source=source, sha256=file_sha256(path) if path.is_file() else None, format=loaded.format,
                    fields=dict(loaded.fields), rows=loaded.rows, used=len(loaded.examples))
