"""Scoring many outputs into eval records and metrics; reading and writing ``eval/<variant>/``.

Both backends and ``ftui score`` go through here, so every number has one definition.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

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


def score_records(task: Task, items: Sequence[tuple[str, str, Mapping[str, str]]],
                  *, inputs: Sequence[str] | None = None,
                  latencies: Sequence[float | None] | None = None) -> tuple[list[PredictionRecord], dict[str, float]]:
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


def write_eval(run_dir: Path, variant: str, records: Sequence[PredictionRecord],
               metrics: Mapping[str, float], **info: Any) -> Path:
    """Write ``predictions.jsonl`` then ``metrics.json`` (the latter last: it marks completion)."""
    out = run_dir / "eval" / variant
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
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


def read_score_file(path: str | Path, *, needs: Sequence[str] = ()) -> list[tuple[str, str, dict[str, str]]]:
    """A JSONL of predictions made elsewhere: ``prediction``, ``reference`` and the task's inputs.

    Every bad line is reported at once (line number and field) in one DataError.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataError("no such file", path=str(p)) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", path=str(p)) from None
    items, problems = [], []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.append(f"line {number}: not UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})")
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"line {number}: expected a JSON object")
            continue
        bad = [k for k in ("prediction", "reference", *needs) if not isinstance(obj.get(k), str)]
        if bad:
            problems.append(f"line {number}: field(s) {', '.join(repr(k) for k in bad)} missing or not text")
            continue
        fields = {k: v for k, v in obj.items() if k not in ("prediction", "reference") and isinstance(v, str)}
        items.append((obj["prediction"], obj["reference"], fields))
    if problems:
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DataError(f"{len(problems)} bad line(s): " + "; ".join(problems[:10]) + more, path=str(p))
    if not items:
        raise DataError("no predictions in the file", path=str(p))
    return items
