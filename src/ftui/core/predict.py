"""``ftui predict``: a run's model on new rows, without a model in sight here.

What is model-free lives here: reading the rows (labelled or not) as the run's task and preset
read data, where the output goes, each row's verdict and output line, and the summary. The
loop that asks the backend for answers is ``ftui.backends.predict``; the command and its
progress display, ``ftui.cli.predict``.

An output line holds the row's source ``line``, its task inputs (``question``, ``context``,
``text``...) as top-level keys, ``prediction``, ``valid`` (null where the task has no validity
rule) and ``error``; a labelled row also ``reference``, ``exact``, ``execution`` (sql) and
``correct``, so a labelled output is itself a file ``ftui score --task T`` reads.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from ftui.core.data import Issue, field_map, load_file
from ftui.core.errors import ConfigError, DataError
from ftui.core.examples import Example
from ftui.core.runs import Run
from ftui.core.scoring import collapse_problems
from ftui.core.tasks import Score, Task
from ftui.core.tasks.base import is_scorable, judge_validity

CHUNK_BATCHES = 4
"""Rows go to the model ``CHUNK_BATCHES`` x ``eval.batch_size`` at a time, and each chunk's
lines are written and flushed before the next starts: the batched generator still sorts a
chunk by length and refills finished rows, and an interrupted prediction keeps every chunk
answered before it."""


@dataclass(frozen=True)
class Skipped:
    """A row of the file that was not predicted, and why (its loader issues, joined)."""

    line: int
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.why}"


@dataclass
class Rows:
    """The rows of a file to predict on, and the ones left out."""

    source: str
    examples: list[Example]
    skipped: list[Skipped]
    format: str


def read_rows(run: Run, data: Path, *, fields: Sequence[str] = (), limit: int | None = None) -> Rows:
    """The rows of ``data`` (JSONL, JSON list, CSV, Parquet), read with the run's task and its
    preset's column names (``fields``: ``--field NAME=COLUMN`` items on top, as for
    ``ftui eval --data``); a reference is optional. A bad row is skipped and listed; a file
    with no usable row, or one whose columns do not fit the task, is a DataError."""
    spec = run.spec
    if Path(data).is_dir():
        raise ConfigError(f"--data {data}: a folder; give the data file itself (JSONL, JSON list, CSV or Parquet)")
    base = _preset_fields(spec.preset)
    columns = field_map(spec.task, fields, base) if fields else base
    loaded = load_file(data, spec.task, columns, need_reference=False)
    whole = [i for i in loaded.issues if i.line == 0]
    if whole:
        raise DataError("; ".join(i.message for i in whole), path=loaded.source)
    skipped = _skipped(loaded.issues)
    if not loaded.examples:
        what = collapse_problems((s.line, s.why) for s in skipped) if skipped else "no rows"
        raise DataError(f"nothing to predict: {what}", path=loaded.source)
    examples = loaded.examples
    if limit and len(examples) > limit:
        examples = examples[:limit]
        skipped = [s for s in skipped if s.line < examples[-1].line]  # the rest were not reached
    return Rows(source=loaded.source, examples=examples, skipped=skipped, format=loaded.format)


def _preset_fields(name: str | None) -> dict[str, str] | None:
    if not name:
        return None
    from ftui.core.presets import load_preset

    try:
        return dict(load_preset(name).data.fields)
    except ConfigError:
        return None  # a preset this ftui no longer ships: the task's default columns


def _skipped(issues: Sequence[Issue]) -> list[Skipped]:
    """One entry per bad line (a row missing two fields is one row, said once)."""
    by_line: dict[int, list[str]] = {}
    for issue in issues:
        text = f"field '{issue.field}' {issue.message}" if issue.field else issue.message
        by_line.setdefault(issue.line, []).append(text)
    return [Skipped(line, "; ".join(texts)) for line, texts in sorted(by_line.items())]


def default_out(run: Run, data: Path, variant: str) -> Path:
    """``RUN/predict/<the file's stem>-<variant>.jsonl``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(data).stem).strip("-.") or "rows"
    return run.dir / "predict" / f"{stem}-{variant}.jsonl"


def judge_row(task: Task, example: Example, prediction: str, *, error: str | None = None) -> tuple[dict[str, Any], Score | None]:
    """The output line for one row, and its Score when the row is labelled (None otherwise).
    ``error``: why the backend gave no answer (a failed request): the row is invalid."""
    fields = dict(example.fields)
    record: dict[str, Any] = {"line": example.line, **fields, "prediction": prediction}
    score = None
    if example.reference:
        score = task.score(prediction, example.reference, fields)
        valid, problem = score.valid, score.error
    else:
        valid, problem = judge_validity(task, prediction, fields)
    if error is not None:  # no answer (its text is empty): invalid, and the reason is the request's
        valid, problem = False, error
    record["valid"], record["error"] = valid, problem
    if score is not None:
        record["reference"] = example.reference
        record["exact"] = score.exact
        if score.execution is not None:
            record["execution"] = score.execution
        record["correct"] = score.exact or score.execution is True
        if not is_scorable(score.details):
            record["scorable"] = False
    return record, score


@dataclass
class Tally:
    """What the written lines add up to, for the summary."""

    rows: int = 0
    judged: int = 0
    """Rows whose validity the task could judge."""
    valid: int = 0
    scores: list[Score] = field(default_factory=list)
    """The labelled rows' scores, for the task's metrics."""
    errors: int = 0
    """Rows the backend gave no answer for (failed requests)."""

    def add(self, record: Mapping[str, Any], score: Score | None, *, failed: bool = False) -> None:
        self.rows += 1
        self.errors += failed
        if record["valid"] is not None:
            self.judged += 1
            self.valid += bool(record["valid"])
        if score is not None:
            self.scores.append(score)


class OutputFile:
    """The output JSONL, written line by line and flushed per chunk, so an interrupted
    prediction keeps every row answered before it. It is created with its first lines: a
    backend that refuses to start leaves no empty file behind (where it goes is checked here)."""

    def __init__(self, path: Path, task: Task) -> None:
        self.path, self.task = path, task
        self.tally = Tally()
        self._file: IO[str] | None = None
        if path.is_dir():
            raise DataError("is a folder; name the output file (a .jsonl)", path=str(path))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot make the output's folder: {exc.strerror}", path=str(path.parent)) from None
        if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise DataError("cannot write the output here (permission denied)", path=str(path))

    def write(self, examples: Sequence[Example], predictions: Sequence[str],
              errors: Sequence[str | None] | None = None) -> None:
        if self._file is None:
            try:
                self._file = open(self.path, "w", encoding="utf-8")
            except OSError as exc:
                raise DataError(f"cannot write the output: {exc.strerror}", path=str(self.path)) from None
        for i, (example, prediction) in enumerate(zip(examples, predictions)):
            error = errors[i] if errors else None
            record, score = judge_row(self.task, example, prediction, error=error)
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.tally.add(record, score, failed=error is not None)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def summary(*, run: Run, variant: str, rows: Rows, out: Path, tally: Tally, task: Task,
            seconds: float, interrupted: bool = False, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What ``ftui predict --json`` prints: counts, the valid rate, the labelled rows' metrics,
    the skipped rows with their reasons, the speed."""
    metrics = task.aggregate(tally.scores) if tally.scores else {}
    scorable = sum(1 for s in tally.scores if is_scorable(s.details))
    return {
        "run": run.id, "variant": variant, "data": rows.source, "out": str(out),
        "rows": tally.rows, "of": len(rows.examples), "interrupted": interrupted,
        "valid": round(tally.valid / tally.judged, 4) if tally.judged else None,
        "labelled": len(tally.scores), "n_scorable": scorable, "metrics": metrics,
        "failed_requests": tally.errors,
        "skipped": [{"line": s.line, "why": s.why} for s in rows.skipped],
        "seconds": round(seconds, 3),
        "rows_per_s": round(tally.rows / seconds, 3) if seconds > 0 and tally.rows else None,
        **({"backend": dict(info)} if info else {}),
    }
