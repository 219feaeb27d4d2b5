"""What the CLI's subcommands do, as functions the TUI can call too.

This layer may import backends (for the tokenizer); the core below it never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftui.core.config import SplitSpec
from ftui.core.data import load_file, load_preset_rows
from ftui.core.datacheck import DataReport, build_report
from ftui.core.errors import ConfigError, FtuiError
from ftui.core.presets import all_presets, load_preset, sample_path
from ftui.core.prompts import DEFAULT_TEMPLATES
from ftui.core.scoring import count_scorable, read_score_file, score_records
from ftui.core.tasks import TASK_NAMES, make_task


def presets_table() -> list[dict[str, Any]]:
    """One row per shipped preset, as ``ftui presets --json`` prints."""
    rows = []
    for p in all_presets():
        if p.data.sample:
            with open(sample_path(p), "rb") as f:
                n = sum(1 for line in f if line.strip())
            n = min(n, p.data.limit) if p.data.limit else n
            train, val, test = p.split.sizes(n)
            split: dict[str, int] | None = {"train": train, "val": val, "test": test}
        else:
            n, split = None, None  # hub only: sizes are known once the hub dataset is read
        rows.append({
            "name": p.name, "title": p.title, "task": p.task, "description": p.description,
            "hub": p.data.hub or None, "sample": p.data.sample or None, "rows": n,
            "split": split,
            "local_model": p.local.model, "openai_model": p.openai.model,
        })
    return rows


def _check_task(task: str | None) -> str:
    if task is None:
        return "text"
    if task not in TASK_NAMES:
        raise ConfigError(f"--task: unknown task '{task}'; choose one of: {', '.join(TASK_NAMES)}")
    return task


def data_check(*, file: Path | None, task: str | None, preset: str | None, hub: bool = False,
               model: str | None = None, max_length: int | None = None) -> DataReport:
    """Load and check a file or a preset's data; token counts with ``model``'s tokenizer."""
    if file is None and preset is None:
        raise ConfigError("data check: give a FILE or --preset NAME")
    if preset is not None:
        p = load_preset(preset)
        if task is not None and task != p.task:
            raise ConfigError(f"--task {task} disagrees with preset '{preset}' (task {p.task})")
        task, template, split = p.task, p.prompt, p.split
        max_length = max_length or p.local.max_length
        model = model or p.local.model
        if file is not None and Path(file).is_dir():
            loaded = load_preset_rows(p, folder=file)
        elif file is not None:
            loaded = load_file(file, task, p.data.fields)
        else:
            loaded = load_preset_rows(p, hub=hub)
    else:
        task = _check_task(task)
        template, split = DEFAULT_TEMPLATES[task], SplitSpec()
        max_length = max_length or 512
        model = model or "smollm2-135m"
        loaded = load_file(file, task)
    counter, name = None, "not counted (--model none)"
    if model != "none" and loaded.examples:
        counter, name = _token_counter(model)
    return build_report(loaded, task=task, template=template, split=split, max_length=max_length,
                        count_tokens=counter, tokenizer_name=name)


def openai_preflight(*, file: Path | None, task: str | None, preset: str | None, hub: bool = False,
                     model: str | None = None, overrides: tuple[str, ...] | list[str] = ()):
    """The OpenAI pre-flight of what ``ftui train --backend openai`` would start."""
    from ftui.core.openai_prep import preflight
    from ftui.core.runspec import RunRequest

    return preflight(RunRequest(preset=preset, data=file, task=task if file else None, backend="openai",
                                model=model, overrides=tuple(overrides), hub=hub))


def _token_counter(model: str):
    """The model's tokenizer as a counter, or (None, why not) when it cannot be had."""
    from ftui.backends.local.models import load_tokenizer, token_counter

    try:
        return token_counter(load_tokenizer(model)), model
    except FtuiError as exc:
        return None, f"not counted: {exc}"


def format_report(r: DataReport) -> str:
    """The human-readable data report."""
    out = [f"{r.source}  ({r.format}, task {r.task})",
           f"  rows {r.rows}, usable {r.limited_from or r.valid}, bad {len(r.issues)}"
           + (f"; the preset uses {r.valid} of them" if r.limited_from else "")]
    for issue in r.issues[:50]:
        out.append(f"    {issue}")
    if len(r.issues) > 50:
        out.append(f"    ... and {len(r.issues) - 50} more")
    dup = f"  duplicates {len(r.duplicates)}"
    if r.duplicates:
        dup += f" (e.g. line {r.duplicates[0][0]} repeats line {r.duplicates[0][1]})"
        if r.conflicting:
            dup += f", {r.conflicting} with a different reference"
    out.append(dup)
    if r.tokens:
        t = r.tokens
        out.append(f"  tokens ({r.tokenizer}): min {t['min']}, mean {t['mean']}, p50 {t['p50']}, "
                   f"p95 {t['p95']}, max {t['max']}, total {t['total']}")
        out.append(f"  longer than {r.max_length} tokens: {len(r.too_long)}"
                   + (f" (lines {', '.join(map(str, r.too_long[:8]))}{'...' if len(r.too_long) > 8 else ''})"
                      if r.too_long else ""))
    else:
        out.append(f"  tokens: {r.tokenizer}")
    if r.split:
        out.append("  split: " + ", ".join(f"{k} {v}" for k, v in r.split.items()))
    else:
        out.append(f"  split: {r.split_error}")
    out.append("  OK" if r.ok else "  NOT OK")
    return "\n".join(out)


def score_file(path: Path, *, task: str | None, preset: str | None) -> dict[str, Any]:
    """``ftui score``: ``{"task", "n", "n_scorable", "metrics"}`` for a JSONL of predictions
    (``metrics`` holds rates; ``n_scorable`` counts the rows they are over, but ``valid``)."""
    if preset is not None:
        p = load_preset(preset)
        name, options = p.task, p.task_options
    else:
        name, options = _check_task(task), {}
    scorer = make_task(name, options)
    items = read_score_file(path, needs=("context",) if name == "sql" else ())
    records, metrics = score_records(scorer, items)
    return {"task": name, "n": len(items), "n_scorable": count_scorable(records), "metrics": metrics}
