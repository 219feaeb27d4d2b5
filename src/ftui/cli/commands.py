"""What the CLI's subcommands do on top of the core: presets, data check, score, the spend
pre-flight, another held-out set for eval. The TUI reaches these through ``ftui ...``
subprocesses (``tui.services``), never by import.

This layer may import backends (for the tokenizer); the core below it never does.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Sequence

from ftui.core.backends import BackendFacts, SpendCheck, backend_names, default_backend
from ftui.core.config import Preset, SplitSpec
from ftui.core.data import Loaded, held_out, load_source
from ftui.core.datacheck import DataReport, build_report
from ftui.core.errors import ConfigError, DataError, FtuiError
from ftui.core.examples import Example
from ftui.core.presets import all_presets, load_preset, sample_path
from ftui.core.prompts import DEFAULT_TEMPLATES
from ftui.core.runs import Run
from ftui.core.request import apply_overrides
from ftui.core.scoring import (PredictionRecord, collapse_problems, count_scorable, read_prediction_lines, read_score_file,
                               score_records, write_records)
from ftui.core.tasks import make_task, task_names


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
            **{f"{name}_model": p.settings_for(name).model for name in backend_names()},
        })
    return rows


def _check_task(task: str | None) -> str:
    if task is None:
        return "text"
    if task not in task_names():
        raise ConfigError(f"--task: unknown task '{task}'; choose one of: {', '.join(task_names())}")
    return task


def data_check(*, file: Path | None, task: str | None, preset: str | None, hub: bool = False,
               model: str | None = None, max_length: int | None = None,
               fields: Sequence[str] = (), overrides: Sequence[str] = ()) -> DataReport:
    """Load and check a file, a folder of split files or a preset's data; token counts with
    ``model``'s tokenizer."""
    if file is None and preset is None:
        raise ConfigError("data check: give a FILE or --preset NAME (or both: a preset read from a local copy; FILE may be a folder of split files, also given as --data)")
    if preset is not None:
        p = load_preset(preset)
        if task is not None and task != p.task:
            raise ConfigError(f"--task {task} disagrees with preset '{preset}' (task {p.task})")
        task, template, split = p.task, p.prompt, p.split
        tokenizer_side = p.settings_for(default_backend())  # token counts: the default backend's model
        max_length = max_length or tokenizer_side.max_length
        model = model or tokenizer_side.model
    else:
        task = _check_task(task)
        p, template, split = None, DEFAULT_TEMPLATES[task], SplitSpec()
        max_length = max_length or 512
        model = model or "smollm2-135m"
    split_keys = {f.name for f in dataclasses.fields(SplitSpec)}
    split_items = [o for o in overrides if o.split("=", 1)[0].strip().removeprefix("split.") in split_keys]
    if split_items:  # the split sizes the run would use (--set val=50)
        split = apply_overrides({"split": split}, [f"split.{o.strip().removeprefix('split.')}"
                                                   for o in split_items], "split")["split"]
    loaded = load_source(task=task, preset=p, data=file, hub=hub, fields=fields)
    counter, name = None, "not counted (--model none)"
    if model != "none" and loaded.examples:
        counter, name = _token_counter(model)
    return build_report(loaded, task=task, template=template, split=split, max_length=max_length,
                        count_tokens=counter, tokenizer_name=name)


def memory_fit(facts: BackendFacts, *, preset: str | None, model: str | None, overrides: Sequence[str],
               report: DataReport) -> Any:
    """What training on this machine would need (``core.machine.FitEstimate``) with the run's
    settings (its method included), or None: a backend that trains elsewhere, or a model whose
    shape is unknown here. The sequence length is the data's longest conversation, up to
    ``max_length``: shorter data needs less than ``max_length`` suggests."""
    from ftui.core.config import LocalSettings
    from ftui.core.machine import detect, estimate_fit, micro_batch_positions, model_shape

    settings = load_preset(preset).settings_for(facts.name) if preset else facts.settings()
    if not isinstance(settings, LocalSettings):
        return None
    known = {f.name for f in dataclasses.fields(LocalSettings)}
    mine = [o.strip().removeprefix(f"{facts.name}.") for o in overrides
            if o.split("=", 1)[0].strip().removeprefix(f"{facts.name}.") in known]
    given = model if model and model != "none" else None  # --model none: tokens not counted
    hp = apply_overrides({facts.name: settings}, [*mine, *([f"model={given}"] if given else [])],
                         facts.name)[facts.name]
    shape = model_shape(hp.model)
    if shape is None:
        return None
    machine = detect()
    precision = {"bf16": "bf16", "fp32": "fp32"}.get(hp.precision) or (
        "bf16" if machine.cuda or machine.cpu_bf16 else "fp32")
    longest = int(report.tokens["max"]) if report.tokens else hp.max_length
    available = machine.gpus[0].mem_total if machine.cuda else machine.ram_available
    return estimate_fit(shape, method=hp.method, device=machine.device, precision=precision,
                        quantization=hp.quantization, lora_r=hp.lora_r, target_modules=hp.target_modules,
                        num_virtual_tokens=hp.num_virtual_tokens, batch_size=hp.batch_size,
                        max_length=min(longest, hp.max_length), available=available,
                        micro_batch_tokens=micro_batch_positions(hp.micro_batch_tokens, machine.device))


def spend_preflight(facts: BackendFacts, *, file: Path | None, task: str | None, preset: str | None,
                    hub: bool = False, model: str | None = None, overrides: Sequence[str] = (),
                    fields: Sequence[str] = ()) -> SpendCheck:
    """What ``ftui train --backend NAME`` would spend, checked as it would be (nothing is sent)."""
    from ftui.core.request import RunRequest, resolve_request

    assert facts.spend_check is not None
    return facts.spend_check(resolve_request(RunRequest(
        preset=preset, data=file, task=task if file else None, backend=facts.name, model=model,
        overrides=tuple(overrides), hub=hub, fields=tuple(fields))))


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
        dup += f" (e.g. {r.duplicates[0]})"
        if r.conflicting:
            dup += f", {r.conflicting} with a different reference"
    out.append(dup)
    if r.leaked:
        out.append(f"  leakage: {len(r.leaked)} held-out row(s) also appear in the training split "
                   f"(e.g. {r.leaked[0]}); scores on them measure memory, not skill")
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


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """What ``ftui score`` found: the summary ``--json`` prints, and every row's record."""

    summary: dict[str, Any]
    """``{"task", "n", "n_scorable", "metrics"}`` (``metrics``: rates, all but ``valid`` over the
    ``n_scorable`` rows), plus ``"rows"`` (the per-row file) when one was written."""
    records: list[PredictionRecord]


def score_file(file: Path | None = None, *, task: str | None, preset: str | None,
               data: Path | None = None, predictions: Path | None = None,
               fields: Sequence[str] = (), rows: Path | None = None) -> ScoreResult:
    """``ftui score``: a JSONL ``file`` of predictions with their references, or a plain-text
    ``predictions`` file (one per line) against the held-out rows in ``data``. ``rows``: where to
    write every row's record (the format of an eval's ``predictions.jsonl``)."""
    if file is not None and (data is not None or predictions is not None):
        raise ConfigError("score: give either a predictions FILE (JSONL) or --data with --predictions, not both")
    if file is None and data is None and predictions is None:
        raise ConfigError("score: give a predictions FILE (JSONL with prediction and reference), "
                          "or --data HELDOUT with --predictions PREDS (one prediction per line)")
    if (data is None) != (predictions is None):
        given, missing = ("--data", "--predictions") if predictions is None else ("--predictions", "--data")
        raise ConfigError(f"score: {given} needs {missing}: --data is the held-out split, --predictions "
                          "the model's outputs for it, one per line")
    p = load_preset(preset) if preset is not None else None
    name, options = (p.task, p.task_options) if p is not None else (_check_task(task), {})
    if fields and data is None:
        raise ConfigError("score: --field maps the columns of --data; a predictions FILE has its own "
                          "fields (prediction, reference and the task's inputs)")
    if rows is not None and any(rows.resolve() == x.resolve() for x in (file, data, predictions) if x is not None):
        raise ConfigError(f"--rows {rows}: that is an input file; name a new file for the per-row output")
    scorer = make_task(name, options)
    if file is not None:
        items, lines = read_score_file(file, needs=("context",) if name == "sql" else ())
    else:
        assert data is not None and predictions is not None
        if predictions.suffix.lower() in (".jsonl", ".json"):
            raise ConfigError(f"--predictions {predictions}: give plain text, one prediction per line; a JSONL "
                              "whose lines hold prediction and reference is scored as FILE (ftui score --task T FILE)")
        held_out, against = _held_out(data, name, p, fields)
        outputs = read_prediction_lines(predictions, expected=len(held_out), against=against)
        items = [(out, ex.reference, dict(ex.fields)) for out, ex in zip(outputs, held_out)]
        lines = list(range(1, len(items) + 1))
    records, metrics = score_records(scorer, items, lines=lines)
    summary: dict[str, Any] = {"task": name, "n": len(records), "n_scorable": count_scorable(records),
                               "metrics": metrics}
    if rows is not None:
        try:
            write_records(rows, records)
        except OSError as exc:
            raise DataError(f"cannot write the per-row file: {exc.strerror}", path=str(rows)) from None
        summary["rows"] = str(rows)
    return ScoreResult(summary=summary, records=records)


def _held_out(data: Path, task: str, preset: Preset | None, fields: Sequence[str]) -> tuple[list[Example], str]:
    """The rows published predictions answer, in order, and how to name them in messages.

    A file is the held-out split as a whole; a folder of split files gives its test split (for
    a preset, the split the preset holds out). Predictions are matched to rows by position, so
    any bad row is an error.
    """
    loaded = load_source(task=task, preset=preset, data=data, fields=fields)
    _refuse_bad_rows(loaded)
    if data.is_dir() and preset is None and "test" not in (loaded.named or {}):
        raise ConfigError(f"--data {data}: the folder has no test file; name the held-out file itself, "
                          "or give --preset, which says which split is held out")
    rows = held_out(loaded, preset.split if preset is not None else SplitSpec())
    if not rows:
        raise DataError("no held-out rows to score against", path=str(data))
    return rows, f"{data} (its test split)" if data.is_dir() else str(data)


def _refuse_bad_rows(loaded: Loaded) -> None:
    if loaded.issues:
        problems = ((i.line, f"field '{i.field}': {i.message}" if i.field else i.message) for i in loaded.issues)
        raise DataError(collapse_problems(problems) + ". Predictions are matched to rows by position, so every "
                        "held-out row must be usable (ftui data check lists them all)", path=loaded.source)


def format_failures(records: Sequence[PredictionRecord], most: int) -> str:
    """The first ``most`` rows that are not correct, in plain text: line, why, prediction, reference."""
    failing = [r for r in records if not r.correct]
    if not failing:
        return "no failing rows"
    out = [f"first {min(most, len(failing))} of {len(failing)} failing rows:"]
    for r in failing[:most]:
        out += [f"line {r.line}: {r.why()}",
                f"  prediction: {_one_line(r.output)}",
                f"  reference:  {_one_line(r.reference)}"]
    return "\n".join(out)


def _one_line(text: str, width: int = 300) -> str:
    """Text on one terminal line: newlines shown as \\n, long text cut with an ellipsis."""
    if not text.strip():
        return "(empty)"
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def freeze_heldout(run: Run, data: Path, *, fields: Sequence[str] = ()) -> tuple[str, int]:
    """``ftui eval RUN --data FILE``: read FILE as the run's task (and preset) reads its data,
    freeze its held-out rows into the run, and return the set's name and size."""
    spec = run.spec
    preset = load_preset(spec.preset) if spec.preset else None
    loaded = load_source(task=spec.task, preset=preset, data=data, fields=fields)
    loaded.raise_if_bad()
    rows = held_out(loaded, preset.split if preset is not None else SplitSpec())
    if not rows:
        raise DataError("no held-out rows to evaluate", path=str(data))
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(data).resolve().stem).strip("-.") or "heldout"
    run.add_heldout(name, rows)
    return name, len(rows)
