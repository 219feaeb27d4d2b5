"""Runs side by side: the settings that differ, accuracy, validity, cost and time as
practitioners publish them, a warning when the runs' data or held-out sets differ, and their
training losses overlaid."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from ftui.core.config import to_plain
from ftui.core.events import read_events
from ftui.core.progress import RunProgress
from ftui.core.runs import Run, file_sha256
from ftui.core.runspec import RunSpec
from ftui.core.scoring import VARIANTS
from ftui.tui import fmt
from ftui.tui.widgets.keys import key_footer
from ftui.tui.widgets.loss_chart import LossChart, run_color

Rows = list[tuple[str, list[str]]]


@dataclass(frozen=True)
class Comparison:
    """What the Compare screen shows and ``w`` writes."""

    titles: list[str]
    """One per run: its id."""
    rows: Rows
    """(label, one cell per run)."""
    warnings: list[str]
    """Why the rates may not compare directly (different data, held-out sets or sizes)."""
    losses: list[tuple[str, list[tuple[int, float]]]]
    """(run id, training loss by step) per run."""


def _rate_pair(evals: dict[str, dict[str, Any]], key: str) -> str:
    base = evals.get("base", {}).get(key)
    tuned = evals.get("finetuned", {}).get(key)
    if base is None and tuned is None:
        return "—"
    if tuned is None:
        return f"{fmt.pct(base)} → —"
    return f"{fmt.pct(base)} → {fmt.pct(tuned)} ({fmt.delta_pp(tuned, base)})" if base is not None \
        else f"— → {fmt.pct(tuned)}"


def _setting_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _compared_settings(spec: RunSpec) -> dict[str, str]:
    """The settings of one run that a comparison looks at, named as ``--set`` names them."""
    out = {k: _setting_text(v) for k, v in spec.used_settings().items()}
    for section, values in (("split", spec.split), ("eval", spec.eval)):
        out.update({f"{section}.{k}": _setting_text(v) for k, v in (to_plain(values) or {}).items()})
    return out


def settings_rows(specs: Sequence[RunSpec]) -> Rows:
    """A row per setting that two runs or more read with different values ("—" where a run has
    no such setting, as another backend or method); one row "settings: same" when none differs."""
    settings = [_compared_settings(s) for s in specs]
    rows: Rows = []
    for key in dict.fromkeys(k for s in settings for k in s):
        values = [s.get(key) for s in settings]
        known = [v for v in values if v is not None]
        if len(known) >= 2 and len(set(known)) > 1:
            rows.append((key, [v if v is not None else "—" for v in values]))
    return rows or [("settings", ["same"] * len(specs))]


def _heldout_sha(run: Run) -> str | None:
    try:
        return file_sha256(run.dir / "data" / "test.jsonl")
    except OSError:  # a run made by hand or by an old version: unknown, never "different"
        return None


def _differ(values: Sequence[Any]) -> bool:
    """Two or more known values that are not all the same."""
    return len({v for v in values if v}) > 1


def data_warnings(runs: Sequence[Run], heldout_n: Sequence[int | None]) -> list[str]:
    """Lines saying why the runs' rates may not compare: other training data, other held-out
    examples (the test split's file differs), or fewer of them scored."""
    data = _differ([r.spec.data.sha256 or r.spec.data.source for r in runs])
    heldout = _differ([_heldout_sha(r) for r in runs])
    if heldout:
        what = "different data and held-out sets" if data else "the same data, different held-out sets"
        return [f"⚠ {what}: the rates do not compare directly"]
    out = []
    if data:
        out.append("⚠ trained on different data; scored on the same held-out set")
    if _differ(heldout_n):
        out.append("⚠ scored on different numbers of held-out examples (held-out n)")
    return out


def compare(runs: Sequence[Run]) -> Comparison:
    """The comparison of ``runs``, read from their directories."""
    infos, losses = [], []
    for run in runs:
        events = read_events(run.events_path)
        progress = RunProgress()
        progress.apply(events)
        losses.append((run.id, progress.train))
        info = run.summary(events)
        full = run.eval_metrics()
        info["eval_cost"] = sum(m.get("cost_usd") or 0.0 for m in full.values()) if full else None
        # the test split's size as scored (not another held-out set's: variant@NAME)
        info["n"] = max((m.get("n") or 0 for v, m in full.items() if v in VARIANTS), default=None)
        infos.append(info)
    specs = [r.spec for r in runs]
    names = [s.data_name for s in specs]
    if len(set(names)) < len(names) and _differ([s.data.sha256 for s in specs]):
        # the same name for other data (an edited file, a newer sample): say which is which
        names = [f"{n} ({s.data.sha256[:8]})" if s.data.sha256 else n for n, s in zip(names, specs)]
    evals = [i["eval"] for i in infos]
    keys = fmt.headline_keys({f"{j}{v}": m for j, e in enumerate(evals) for v, m in e.items()})
    rows: Rows = [
        ("status", [i["status"] for i in infos]),
        ("backend", [str(i["backend"]) for i in infos]),
        ("model", [str(i["model"]) for i in infos]),
        ("data", names),
        *settings_rows(specs),
        ("held-out n", [str(i["n"] or "—") for i in infos]),
    ]
    for k in keys:
        rows.append((f"{fmt.METRIC_LABELS[k]} base → ft", [_rate_pair(e, k) for e in evals]))
    acc = "execution" if "execution" in keys else "exact"
    rows.append((f"{fmt.METRIC_LABELS[acc]} k-shot", [fmt.pct(e.get("kshot", {}).get(acc)) for e in evals]))
    rows += [
        ("training cost", [fmt.money(i["cost_usd"], digits=4) for i in infos]),
        ("eval cost", [fmt.money(i["eval_cost"], digits=4) if i["eval_cost"] else "—" for i in infos]),
        ("total time", [fmt.duration(i["duration_s"]) for i in infos]),
        ("steps", [f"{i['step']}/{i['total_steps']}" if i["step"] else "—" for i in infos]),
        ("tokens trained", [fmt.count(i["tokens"]) for i in infos]),
    ]
    return Comparison(titles=[r.id for r in runs], rows=rows,
                      warnings=data_warnings(runs, [i["n"] for i in infos]), losses=losses)


def to_markdown(comparison: Comparison) -> str:
    """The table as Markdown, after the warnings (as a quote)."""
    titles, rows = comparison.titles, comparison.rows
    out = [line for w in comparison.warnings for line in (f"> {w}", "")]
    out += ["| | " + " | ".join(titles) + " |", "|---" * (len(titles) + 1) + "|"]
    out += ["| " + label + " | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for label, cells in rows]
    return "\n".join(out) + "\n"


class CompareScreen(Screen):
    BINDINGS = [
        Binding("w", "write", "Write Markdown here"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, runs: Sequence[Run]) -> None:
        super().__init__()
        self.runs = list(runs)
        self.comparison = compare(self.runs)
        self.titles, self.rows = self.comparison.titles, self.comparison.rows

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Settings that differ; held-out rates: base → fine-tuned (change in points)",
                     id="compare-head")
        yield Static("\n".join(self.comparison.warnings), id="compare-warning",
                     classes="" if self.comparison.warnings else "hidden")
        yield DataTable(id="compare", cursor_type="row", zebra_stripes=True)
        yield LossChart(id="compare-chart")
        yield Static("", id="compare-note", classes="hidden")
        yield key_footer()

    def on_mount(self) -> None:
        self.sub_title = "compare runs"
        table = self.query_one("#compare", DataTable)
        table.add_column("", key="label")
        for i, title in enumerate(self.titles):
            table.add_column(Text(title, style="bold rgb({},{},{})".format(*run_color(i))), key=title)
        for label, cells in self.rows:
            table.add_row(label, *cells)
        self.query_one("#compare-chart", LossChart).set_runs(self.comparison.losses)
        table.focus()

    def action_write(self) -> Path | None:
        """The table as Markdown in the current directory (where ``ftui`` was started)."""
        path = Path.cwd() / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.md"
        try:
            path.write_text(to_markdown(self.comparison), encoding="utf-8")
        except OSError as exc:
            self.notify(f"could not write {path}: {exc}", severity="error")
            return None
        note = self.query_one("#compare-note", Static)
        note.update(f"wrote {path}")
        note.remove_class("hidden")
        self.notify(f"wrote {path}", title="Compare")
        return path

    def action_back(self) -> None:
        self.app.go_back()
