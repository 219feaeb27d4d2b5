"""``ftui predict RUN --data FILE``: a run's model on new rows, in this process, with a progress
bar on stderr (plain progress lines when stderr is not a terminal) and one JSONL line per row.

Bad rows are listed on stderr by line and skipped; the summary counts them. Ctrl-C keeps
every row written so far (the output is flushed per chunk, see ``ftui.core.predict``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, TextIO

from ftui.core.errors import ConfigError
from ftui.tui.fmt import duration, rate  # a pure module: no Textual is loaded

if TYPE_CHECKING:
    from ftui.core.predict import Skipped

VARIANTS = ("finetuned", "base", "kshot")
MODELS = {"finetuned": "the fine-tuned model", "base": "the base model",
          "kshot": "the base model with k-shot prompts"}
SHOWN_SKIPPED = 20
"""Bad rows listed one per line on stderr; the rest are summed up (``--json`` lists all)."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("predict", help="run a run's model on new rows: predictions, validity, scores if labelled")
    p.add_argument("run", metavar="RUN", help="id, unique prefix, or 'latest'")
    p.add_argument("--data", type=Path, required=True, metavar="FILE",
                   help="the rows (JSONL, JSON list, CSV, Parquet), with the task's inputs; a reference "
                        "column is optional (rows that have one are scored too)")
    p.add_argument("--variant", choices=VARIANTS, default="finetuned",
                   help="the model: the run's fine-tuned one (default), its base, or the base with k-shot "
                        "prompts (the shots its eval uses)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="the output JSONL (default: RUN's folder, predict/<file>-<variant>.jsonl)")
    p.add_argument("--field", action="append", default=[], metavar="NAME=COLUMN", dest="fields",
                   help="read a task field from another column, as for train and eval --data")
    p.add_argument("--limit", type=int, metavar="N", help="the first N usable rows")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document")


def cmd_predict(args: argparse.Namespace) -> int:
    from ftui.runner.quiet import quiet_libraries

    quiet_libraries()  # before torch and transformers load: their loading bars would break ours
    from ftui.backends.base import load_backend
    from ftui.backends.predict import predict_rows
    from ftui.core.predict import OutputFile, default_out, read_rows, summary
    from ftui.core.runs import resolve_run
    from ftui.core.tasks import make_task

    run = resolve_run(args.run)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be 1 or more, got {args.limit}")
    if args.variant == "finetuned" and not run.finetuned_ready():
        raise ConfigError(f"run {run.id} has no fine-tuned model yet (no adapter/ or model/, no fine-tuned "
                          f"model id): train it first (ftui resume {run.id}), or predict with --variant base")
    rows = read_rows(run, args.data, fields=args.fields, limit=args.limit)
    out_path = args.out or default_out(run, args.data, args.variant)
    if out_path.resolve() == Path(args.data).resolve():
        raise ConfigError(f"--out {out_path}: that is the input file; name a new file for the predictions")
    report_skipped(rows.skipped, sys.stderr)
    backend = load_backend(run.spec.backend)
    out = OutputFile(out_path, make_task(run.spec.task, run.spec.task_options))
    total = len(rows.examples)
    progress = progress_display(f"predict {args.variant}", total)

    began = time.perf_counter()

    def started(where: str) -> None:
        nonlocal began
        print(f"run {run.id}: {total} row(s) of {rows.source}, {MODELS[args.variant]} {where}; "
              f"writing {out_path}", file=sys.stderr, flush=True)
        began = time.perf_counter()  # the speed: from here (model load included), not the imports
        progress.start()

    info: Mapping[str, Any] = {}
    interrupted = False
    try:
        info = predict_rows(run, backend, rows, args.variant, out, on_progress=progress, on_start=started)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
        out.close()
    result = summary(run=run, variant=args.variant, rows=rows, out=out_path, tally=out.tally, task=out.task,
                     seconds=time.perf_counter() - began, interrupted=interrupted, info=info)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(summary_text(result))
    if interrupted:
        print(f"interrupted: the {result['rows']} row(s) answered before it are in {out_path}" if result["rows"]
              else "interrupted before any row was answered: nothing was written", file=sys.stderr)
        return 130
    return 0


def report_skipped(skipped: Sequence[Skipped], stream: TextIO) -> None:
    """Every bad row by line (the first ``SHOWN_SKIPPED``), then what the rest add up to."""
    if not skipped:
        return
    print(f"skipping {len(skipped)} bad row(s):", file=stream)
    for s in skipped[:SHOWN_SKIPPED]:
        print(f"  {s}", file=stream)
    if len(skipped) > SHOWN_SKIPPED:
        rest = [s.line for s in skipped[SHOWN_SKIPPED:]]
        print(f"  ... and {len(rest)} more, on lines {_lines(rest)} (--json lists every one)", file=stream)
    stream.flush()


def summary_text(s: Mapping[str, Any]) -> str:
    """The summary for a person: rows and where, valid, the labelled rows' metrics, skipped, speed."""
    lines = [f"{s['rows']} row(s) written to {s['out']}" + (f" (interrupted, of {s['of']})" if s["interrupted"] else "")]
    if s["valid"] is not None:
        lines.append(f"  valid      {s['valid']:.1%}")
    else:
        lines.append("  valid      not judged (the task has no validity rule without a reference)")
    if s["labelled"]:
        left_out = s["labelled"] - s["n_scorable"]
        note = f"; {left_out} not scorable (their reference cannot run)" if left_out else ""
        lines.append(f"  labelled   {s['labelled']} row(s) scored against their reference{note}:")
        lines += [f"    {k:<18} {v:6.1%}" for k, v in s["metrics"].items() if k != "valid"]
    else:
        lines.append("  labelled   none (no reference column): predictions and validity only")
    if s["failed_requests"]:
        lines.append(f"  failed     {s['failed_requests']} request(s) gave no answer (counted invalid)")
    if s["skipped"]:
        reasons = {}
        for row in s["skipped"]:
            reasons.setdefault(row["why"], []).append(row["line"])
        why = "; ".join(f"{why} (line{'s' if len(ls) > 1 else ''} {_lines(ls)})" for why, ls in reasons.items())
        lines.append(f"  skipped    {len(s['skipped'])} bad row(s): {why}")
    speed = rate(s["rows_per_s"], "rows") if s["rows_per_s"] else "no rows"
    lines.append(f"  speed      {speed} ({duration(s['seconds'])} in all, loading the model included)")
    cost = (s.get("backend") or {}).get("cost_usd")
    if cost is not None:
        lines.append(f"  cost       ${cost:.4f} (reported usage)")
    return "\n".join(lines)


def _lines(numbers: list[int], most: int = 8) -> str:
    shown = ", ".join(map(str, numbers[:most]))
    return shown + (", ..." if len(numbers) > most else "")


def progress_display(label: str, total: int, stream: TextIO | None = None) -> "ProgressDisplay":
    """A rich progress bar when ``stream`` (stderr) is a terminal, else plain lines."""
    stream = stream or sys.stderr
    if stream.isatty():
        return _RichProgress(label, total, stream)
    return _PlainProgress(label, total, stream)


class ProgressDisplay(Protocol):
    def start(self) -> None:
        """The model is ready: the clock starts."""

    def __call__(self, done: int) -> None:
        """``done`` rows answered."""

    def close(self) -> None:
        ...


class _PlainProgress:
    """``predict finetuned 64/200 (32%), 12.3 rows/s, ETA 11s``: at the start, at the first
    answers, then at most one line every ``interval_s`` (``$FTUI_EVAL_PROGRESS_S``, as eval's
    progress events), and at the end."""

    def __init__(self, label: str, total: int, stream: TextIO, *, interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from ftui.core.evalplan import progress_interval_s

        self.label, self.total, self.stream = label, total, stream
        self.interval_s = progress_interval_s() if interval_s is None else interval_s
        self._clock = clock
        self._began = clock()
        self._last: float | None = None
        self._done = 0

    def start(self) -> None:
        self._began = self._clock()
        self._line(0, None)

    def __call__(self, done: int) -> None:
        now = self._clock()
        self._done = done
        if self._last is not None and now - self._last < self.interval_s and done < self.total:
            return
        self._last = now
        elapsed = now - self._began
        self._line(done, done / elapsed if done and elapsed > 0 else None)

    def _line(self, done: int, per_s: float | None) -> None:
        parts = [f"{self.label} {done}/{self.total} ({done / self.total if self.total else 0:.0%})"]
        if per_s:
            parts.append(rate(per_s, "rows"))
            if done < self.total:
                parts.append(f"ETA {duration((self.total - done) / per_s)}")
        print(", ".join(parts), file=self.stream, flush=True)

    def close(self) -> None:
        pass


class _RichProgress:
    """A rich bar: rows done of all, rows/s, elapsed and ETA."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(file=stream), transient=False)
        self._task = self._progress.add_task(label, total=total, speed="… rows/s", start=False)

    def start(self) -> None:
        self._progress.start()
        self._progress.start_task(self._task)

    def __call__(self, done: int) -> None:
        self._progress.update(self._task, completed=done)
        speed = self._progress.tasks[0].speed  # rich's estimate over its recent updates
        self._progress.update(self._task, speed=rate(speed, "rows") if speed else "… rows/s")

    def close(self) -> None:
        self._progress.stop()
