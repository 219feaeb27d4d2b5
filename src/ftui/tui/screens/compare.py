"""Runs side by side: accuracy, validity, cost and time, as practitioners publish them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from ftui.core.paths import ftui_home
from ftui.core.runs import Run
from ftui.tui.widgets.keys import key_footer
from ftui.tui import fmt


def _rate_pair(evals: dict[str, dict[str, Any]], key: str) -> str:
    base = evals.get("base", {}).get(key)
    tuned = evals.get("finetuned", {}).get(key)
    if base is None and tuned is None:
        return "—"
    if tuned is None:
        return f"{fmt.pct(base)} → —"
    return f"{fmt.pct(base)} → {fmt.pct(tuned)} ({fmt.delta_pp(tuned, base)})" if base is not None \
        else f"— → {fmt.pct(tuned)}"


def compare_rows(runs: Sequence[Run]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Column titles (one per run) and rows (label, one cell per run)."""
    infos = []
    for run in runs:
        info = run.summary()
        full = run.eval_metrics()
        info["eval_cost"] = sum(m.get("cost_usd") or 0.0 for m in full.values()) if full else None
        info["n"] = max((m.get("n") or 0 for m in full.values()), default=None)
        infos.append(info)
    evals = [i["eval"] for i in infos]
    keys = fmt.headline_keys({f"{j}{v}": m for j, e in enumerate(evals) for v, m in e.items()})
    rows: list[tuple[str, list[str]]] = [
        ("status", [i["status"] for i in infos]),
        ("backend", [str(i["backend"]) for i in infos]),
        ("model", [str(i["model"]) for i in infos]),
        ("data", [str(i["preset"] or i["task"]) for i in infos]),
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
    return [r.id for r in runs], rows


def to_markdown(titles: list[str], rows: list[tuple[str, list[str]]]) -> str:
    out = ["| | " + " | ".join(titles) + " |", "|---" * (len(titles) + 1) + "|"]
    out += ["| " + label + " | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for label, cells in rows]
    return "\n".join(out) + "\n"


class CompareScreen(Screen):
    BINDINGS = [
        Binding("w", "write", "Write Markdown"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, runs: Sequence[Run]) -> None:
        super().__init__()
        self.runs = list(runs)
        self.titles, self.rows = compare_rows(self.runs)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{len(self.runs)} runs side by side; rates on the held-out split, "
                     "base → fine-tuned (change in points)", id="compare-head")
        yield DataTable(id="compare", cursor_type="row", zebra_stripes=True)
        yield Static("", id="compare-note")
        yield key_footer()

    def on_mount(self) -> None:
        self.sub_title = "compare runs"
        table = self.query_one("#compare", DataTable)
        table.add_column("", key="label")
        for title in self.titles:
            table.add_column(title, key=title)
        for label, cells in self.rows:
            table.add_row(label, *cells)
        table.focus()

    def action_write(self) -> Path | None:
        path = ftui_home() / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.md"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(to_markdown(self.titles, self.rows), encoding="utf-8")
        except OSError as exc:
            self.notify(f"could not write: {exc}", severity="error")
            return None
        self.query_one("#compare-note", Static).update(f"wrote {path}")
        self.notify(f"wrote {path}", title="Compare")
        return path

    def action_back(self) -> None:
        self.app.go_back()
