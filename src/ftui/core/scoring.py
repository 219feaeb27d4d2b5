"""Scoring many outputs into eval records and metrics; reading and writing ``eval/<variant>/``.

Both backends and ``ftui score`` go through here, so every number has one definition.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ftui.core.errors import DataError
from ftui.core.examples import Example
from ftui.core.runs import write_json_atomic
from ftui.core.tasks import Task
from ftui.core.tasks.base import is_scorable

VARIANTS = ("base", "kshot", "finetuned")


@dataclass(frozen=True)
class PredictionRecord:
    """One line of ``eval/<variant>/predictions.jsonl``."""

    index: int
    """Position in the held-out split."""
    input: str
    """The user turn the model saw (without shots or system prompt)."""
    reference: str
    output: str
    valid: bool
    exact: bool
    execution: bool | None = None
    error: str | None = None
    latency_s: float | None = None
    """Seconds this example took (its share of a batch for batched decoding)."""
    fields: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None
    """``ftui score``: 1-based line of the prediction in the file it came from (None in a run)."""

    @property
    def correct(self) -> bool:
        """Exact, or (sql) the same results as the reference."""
        return self.exact or self.execution is True

    def why(self) -> str:
        """Why a row is not correct, for a person: the task's error, else the verdict."""
        if self.error:
            return self.error
        if self.execution is False:
            return "valid, but its results differ from the reference's"
        return "valid, but not the reference" if self.valid else "not valid"


def score_records(task: Task, items: Sequence[tuple[str, str, Mapping[str, str]]],
                  *, inputs: Sequence[str] | None = None,
                  latencies: Sequence[float | None] | None = None,
                  lines: Sequence[int] | None = None) -> tuple[list[PredictionRecord], dict[str, float]]:
    """Score (prediction, reference, fields) triples; returns records and aggregate metrics."""
    records, scores = [], []
    for i, (prediction, reference, fields) in enumerate(items):
        s = task.score(prediction, reference, fields)
        scores.append(s)
        records.append(PredictionRecord(
            index=i,
            input=inputs[i] if inputs is not None else fields.get("question") or fields.get("text") or fields.get("input", ""),
            reference=reference, output=prediction, valid=s.valid, exact=s.exact,
            execution=s.execution, error=s.error,
            latency_s=latencies[i] if latencies is not None else None,
            fields=dict(fields), details=dict(s.details),
            line=lines[i] if lines is not None else None,
        ))
    return records, task.aggregate(scores)


def count_scorable(records: Sequence[PredictionRecord]) -> int:
    """Records whose reference could be judged (sql: the gold runs on its context). The
    task's rates but ``valid`` are over these; it is written beside them as ``n_scorable``,
    a count, never inside ``metrics``, whose values are all rates."""
    return sum(1 for r in records if is_scorable(r.details))


def left_out(info: Mapping[str, Any]) -> int:
    """How many examples of a ``metrics.json`` (or ``ftui score`` result) were not scorable;
    0 when it predates ``n_scorable``."""
    n, scorable = info.get("n"), info.get("n_scorable")
    return n - scorable if isinstance(n, int) and isinstance(scorable, int) else 0


def count_text(info: Mapping[str, Any]) -> str:
    """Its example count for a table cell: ``568``, or ``568 (551 scorable)``."""
    n = str(info.get("n", ""))
    return f"{n} ({info['n_scorable']} scorable)" if left_out(info) else n


def score_examples(task: Task, examples: Sequence[Example], outputs: Sequence[str], **kw: Any):
    """``score_records`` for held-out examples and the model's outputs, in the same order."""
    if len(examples) != len(outputs):
        raise ValueError(f"{len(examples)} examples but {len(outputs)} outputs")
    items = [(out, ex.reference, ex.fields) for ex, out in zip(examples, outputs)]
    return score_records(task, items, **kw)


def write_records(path: Path, records: Sequence[PredictionRecord]) -> None:
    """One JSON object per record and line: the format of ``eval/<variant>/predictions.jsonl``."""
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")


def write_eval(run_dir: Path, variant: str, records: Sequence[PredictionRecord],
               metrics: Mapping[str, float], **info: Any) -> Path:
    """Write ``predictions.jsonl`` then ``metrics.json`` (the latter last: it marks completion)."""
    out = run_dir / "eval" / variant
    out.mkdir(parents=True, exist_ok=True)
    write_records(out / "predictions.jsonl", records)
    write_json_atomic(out / "metrics.json", {"variant": variant, "n": len(records),
                                             "n_scorable": count_scorable(records),
                                             "metrics": dict(metrics), **info})
    return out


def read_predictions(run_dir: Path, variant: str) -> list[dict[str, Any]]:
    path = run_dir / "eval" / variant / "predictions.jsonl"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def collapse_problems(problems: Iterable[tuple[int, str]], *, most: int = 10, lines_shown: int = 5) -> str:
    """``(line, message)`` problems as one paragraph: a message that repeats is said once, with
    its count and first lines (``field 'prediction' missing or not text on 568 lines (1, 2, ...)``)."""
    by_message: dict[str, list[int]] = {}
    for line, message in problems:
        by_message.setdefault(message, []).append(line)
    parts = []
    for message, lines in by_message.items():
        if len(lines) == 1:
            parts.append(f"line {lines[0]}: {message}")
        else:
            shown = ", ".join(map(str, lines[:lines_shown])) + (", ..." if len(lines) > lines_shown else "")
            parts.append(f"{message} on {len(lines)} lines ({shown})")
    total = sum(len(lines) for lines in by_message.values())
    more = f"; and {len(parts) - most} more kinds" if len(parts) > most else ""
    return f"{total} bad line(s): " + "; ".join(parts[:most]) + more


def read_score_file(path: str | Path, *, needs: Sequence[str] = ()) -> tuple[list[tuple[str, str, dict[str, str]]], list[int]]:
    """A JSONL of predictions made elsewhere: ``prediction``, ``reference`` and the task's inputs.

    Returns the (prediction, reference, fields) triples and each one's line. Every bad line is
    reported at once in one DataError, a problem that repeats once with its count.
    """
    p = Path(path)
    raw = _read_bytes(p, "a JSONL file of predictions")
    items, lines, problems = [], [], []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.append((number, f"not UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})"))
            continue
        except json.JSONDecodeError as exc:
            problems.append((number, f"not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        except RecursionError:
            problems.append((number, "JSON nested too deeply to read"))
            continue
        if not isinstance(obj, dict):
            problems.append((number, "expected a JSON object"))
            continue
        bad = [k for k in ("prediction", "reference", *needs) if not isinstance(obj.get(k), str)]
        if bad:
            names = ", ".join(repr(k) for k in bad)
            problems.append((number, f"field{'s' if len(bad) > 1 else ''} {names} missing or not text"))
            continue
        fields = {k: v for k, v in obj.items() if k not in ("prediction", "reference") and isinstance(v, str)}
        items.append((obj["prediction"], obj["reference"], fields))
        lines.append(number)
    if problems:
        raise DataError(collapse_problems(problems), path=str(p))
    if not items:
        raise DataError("no predictions in the file", path=str(p))
    return items, lines


def read_prediction_lines(path: str | Path, *, expected: int, against: str) -> list[str]:
    """A published predictions file: plain text, one prediction per line, in the order of the
    held-out split ``against`` (``expected`` rows).

    Lines end at "\\n" (a "\\r" before it is dropped), so a final newline ends the last line
    rather than adding an empty one. A blank line is an empty prediction (the model said
    nothing). Blank lines after the ``expected``-th are ignored; any other difference in count
    is an error naming both files, as the lines could no longer be matched to rows.
    """
    p = Path(path)
    raw = _read_bytes(p, "a predictions file (one prediction per line)")
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as some editors write
        raw = raw[3:]
    pieces = raw.split(b"\n") if raw else []
    if raw.endswith(b"\n"):
        pieces.pop()
    predictions = []
    for number, piece in enumerate(pieces, start=1):
        if b"\x00" in piece:
            raise DataError("a NUL byte: this looks like a binary file, not one prediction per line",
                            path=str(p), line=number)
        try:
            predictions.append(piece.decode("utf-8").removesuffix("\r"))
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 (byte 0x{piece[exc.start]:02x} at column {exc.start + 1})",
                            path=str(p), line=number) from None
    if len(predictions) > expected and not any(x.strip() for x in predictions[expected:]):
        predictions = predictions[:expected]
    if len(predictions) != expected:
        blank = sum(1 for x in predictions if not x.strip())
        blanks = f" ({blank} of them blank)" if blank else ""
        hint = ("; if the last prediction is empty, end the file with one more newline"
                if len(predictions) == expected - 1 and raw.endswith(b"\n") else "")
        raise DataError(f"{len(predictions)} prediction line(s){blanks}, but the held-out split {against} "
                        f"has {expected} row(s); the predictions must follow its rows line for line{hint}",
                        path=str(p))
    return predictions


def _read_bytes(path: Path, what: str) -> bytes:
    """The file's bytes; a DataError naming it when it cannot be read (``what``: what it should be)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise DataError(f"is a folder, not {what}", path=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", path=str(path)) from None
