"""Sweeps: a study with one run per combination of settings (``ftui study --grid KEY=V1,V2``),
chosen by the validation split.

Each run trains, then evaluates its fine-tuned model on its own validation rows (frozen as the
held-out set ``val``: ``eval/finetuned@val/``). The run with the best headline metric there
is the sweep's result; only it is evaluated on the test split (with base and k-shot), once, so
the test rows never take part in the choice. ``study.json`` holds the grid, each run's
combination, the budget, the runs the budget skipped and the winner.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ftui.core.errors import ConfigError

VAL = "val"
"""The held-out set name a sweep run's validation rows are frozen under (``data/heldout-val.jsonl``)."""

NOT_SWEPT = {"limit": "eval.limit would give the runs different validation sets",
             "k": "eval.k changes k-shot prompts only, and a sweep evaluates k-shot once, after it"}
"""eval settings a grid refuses, and why."""


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``--grid KEY=V1,V2`` items -> [(key, values)], in the order given; values as typed (the
    settings check types them). Refuses a malformed item, a key given twice and a split key."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        values = list(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
        if not sep or not key or not values:
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. --grid learning_rate=2e-4,5e-4)")
        if key in (k for k, _ in grid):
            raise ConfigError(f"--grid {key}: given twice; put every value in one --grid {key}=V1,V2,...")
        section, dot, name = key.partition(".")
        if dot and section == "split":
            raise ConfigError(f"--grid {key}: a sweep compares runs on one split; set it with --set {key}=...")
        if dot and section == "eval" and name in NOT_SWEPT:
            raise ConfigError(f"--grid {key}: {NOT_SWEPT[name]}; set it with --set {key}=...")
        grid.append((key, values))
    return grid


def grid_items(text: str) -> list[str]:
    """A line of grid items as the TUI's form takes them, ``learning_rate=2e-4, 5e-4; lora_r=8,32``
    -> ``["learning_rate=2e-4, 5e-4", "lora_r=8,32"]``: items end at ``;`` or at a space before
    the next ``KEY=``."""
    return [item.strip() for item in re.split(r"[;\s]+(?=[A-Za-z_][\w.]*=)|;", text) if item.strip(" ;")]


def combinations(grid: Sequence[tuple[str, Sequence[str]]]) -> list[dict[str, str]]:
    """Every combination of the grid's values (the cartesian product), the last key fastest."""
    keys = [k for k, _ in grid]
    return [dict(zip(keys, values)) for values in itertools.product(*(v for _, v in grid))]


def combination_text(settings: Mapping[str, str]) -> str:
    """``learning_rate=5e-4 lora_r=32``."""
    return " ".join(f"{k}={v}" for k, v in settings.items())


@dataclass(frozen=True)
class Sweep:
    """A study's sweep, as ``study.json`` holds it under ``sweep``."""

    keys: tuple[str, ...]
    budget_minutes: float | None = None
    skipped: Mapping[str, str] = field(default_factory=dict)
    """run id -> why it was not launched (the budget)."""
    winner: str | None = None
    """The run chosen by the validation metric, once every run has ended (its test eval launched)."""

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> Sweep | None:
        if not obj:
            return None
        budget = obj.get("budget_minutes")
        return cls(keys=tuple(obj.get("keys") or ()), budget_minutes=None if budget is None else float(budget),
                   skipped=dict(obj.get("skipped") or {}), winner=obj.get("winner"))

    def to_json(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "budget_minutes": self.budget_minutes, "skipped": dict(self.skipped),
                "winner": self.winner}


# -- the budget ------------------------------------------------------------------------------

def budget_verdict(budget_minutes: float | None, spent_minutes: Sequence[float]) -> str | None:
    """Why the next run is not launched (None: launch it). ``spent_minutes``: the training plus
    evaluation minutes of the sweep's runs that have ended. The next run is estimated at their
    mean; before any has ended there is nothing measured, so the first run always starts."""
    if budget_minutes is None or not spent_minutes:
        return None
    spent = sum(spent_minutes)
    estimate = statistics.fmean(spent_minutes)
    if spent + estimate <= budget_minutes:
        return None
    return (f"budget {budget_minutes:g} min: {spent:.2f} min spent by {len(spent_minutes)} run(s), "
            f"the next would take about {estimate:.2f} min")


# -- the sweep's part of the table -----------------------------------------------------------

def sweep_section(runs: Sequence[Any], members: Sequence[Any], sweep: Sweep, *, primary: str) -> dict[str, Any]:
    """The sweep's rows (one per run: its combination, validation metrics, training time,
    state), best validation ``primary`` first; the winner and its test metrics; the skipped."""
    from ftui.core.events import read_events
    from ftui.core.study import _training

    rows = []
    for run, member in zip(runs, members):
        val = run.eval_metrics().get(f"finetuned@{VAL}")
        train_s, _ = _training(run, read_events(run.events_path))
        rows.append({"run": run.id, "settings": dict(member.settings), "n": val.get("n") if val else None,
                     "metrics": dict(val.get("metrics", {})) if val else {},
                     "training_s": train_s, "status": run.status().get("state"),
                     "skipped": sweep.skipped.get(run.id)})
    scored = [r for r in rows if primary in r["metrics"]]
    order = sorted(scored, key=lambda r: -r["metrics"][primary]) + [r for r in rows if r not in scored]
    best = order[0]["run"] if scored else None
    for r in order:
        r["best"] = r["run"] == best
    winner = next((run for run in runs if run.id == sweep.winner), None)
    test = winner.eval_metrics().get("finetuned") if winner is not None else None
    metric_keys = list(dict.fromkeys(k for r in rows for k in r["metrics"]))
    return {"keys": list(sweep.keys), "metric": primary, "metric_keys": metric_keys, "rows": order,
            "best": best, "winner": sweep.winner, "budget_minutes": sweep.budget_minutes,
            "test": None if test is None else {"n": test.get("n"), "metrics": dict(test.get("metrics", {}))},
            "skipped": [{"run": r["run"], "settings": r["settings"], "why": r["skipped"]} for r in rows if r["skipped"]]}


def plot_axis(section: Mapping[str, Any]) -> tuple[str, list[tuple[str, list[tuple[float, float]]]]] | None:
    """What a picture of the sweep shows, where it reads faster than its table: the validation
    metric against the first swept setting with three or more numeric values (a trend), one line
    per combination of the other settings -> (setting, [(label, [(value, metric)])]). None
    when no setting has such values or fewer than three runs have a metric."""
    metric = section["metric"]
    scored = [r for r in section["rows"] if metric in r["metrics"]]
    for key in section["keys"]:
        try:
            values = {float(r["settings"][key]) for r in section["rows"]}
        except (KeyError, ValueError):
            continue
        if len(values) < 3 or len(scored) < 3:
            continue
        lines: dict[str, list[tuple[float, float]]] = {}
        for r in scored:
            rest = combination_text({k: v for k, v in r["settings"].items() if k != key})
            lines.setdefault(rest or metric, []).append((float(r["settings"][key]), r["metrics"][metric]))
        return key, [(label, sorted(points)) for label, points in lines.items()]
    return None


def winner_line(section: Mapping[str, Any]) -> str:
    """``best by validation execution: learning_rate=5e-4 lora_r=32; its test execution 41.0% (n=40)``."""
    metric = section["metric"]
    best = next((r for r in section["rows"] if r["best"]), None)
    if best is None:
        return f"no run has a validation {metric} yet"
    line = (f"best by validation {metric}: {combination_text(best['settings'])} "
            f"({best['metrics'][metric]:.1%} on {best['n']} validation rows)")
    test = section.get("test")
    if section.get("winner") == best["run"] and test and metric in test["metrics"]:
        line += f"; its test {metric} {test['metrics'][metric]:.1%} (n={test['n']})"
    elif any(r["status"] not in ("succeeded", "failed", "cancelled", "lost") for r in section["rows"]
             if not r["skipped"]):
        line += "; test metrics once every run has ended"
    return line


def skipped_lines(section: Mapping[str, Any]) -> list[str]:
    return [f"skipped {s['run']} ({combination_text(s['settings'])}): {s['why']}" for s in section["skipped"]]


def sweep_columns(section: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Head and body of the sweep's table (text and markdown): the swept settings, the
    validation metrics (the headline first), the training time and what became of the run."""
    from ftui.core.study import _duration

    metric = section["metric"]
    keys = [metric, *[k for k in section["metric_keys"] if k != metric]]
    head = [*section["keys"], *[f"val {k}" for k in keys], "train", ""]
    body = []
    for r in section["rows"]:
        mark = "best" if r["best"] else ("skipped" if r["skipped"] else (
            "" if r["status"] == "succeeded" else r["status"] or ""))
        body.append([*[r["settings"].get(k, "") for k in section["keys"]],
                     *[f"{r['metrics'][k]:.1%}" if k in r["metrics"] else "-" for k in keys],
                     "-" if r["skipped"] else _duration(r["training_s"]), mark])
    return head, body


def render_sweep_markdown(section: Mapping[str, Any]) -> list[str]:
    head, body = sweep_columns(section)
    lines = ["## Sweep", "", f"Sorted by `{section['metric']}` on each run's validation rows (the test rows "
             "take no part in the choice; only the best run is evaluated on them, in the table below).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(f"**{c}**" if c == "best" else c for c in row) + " |" for row in body]
    lines += ["", winner_line(section) + ".", *[f"- {line}" for line in skipped_lines(section)], ""]
    return lines


def render_sweep_text(section: Mapping[str, Any]) -> list[str]:
    from ftui.core.study import _columns

    head, body = sweep_columns(section)
    return [f"sweep, by validation {section['metric']}:", *_columns(head, body), winner_line(section),
            *skipped_lines(section)]


def sweep_csv_rows(section: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One row per sweep run: its settings, validation metrics (``val_KEY``), and the winner's
    test metrics (``test_KEY``, on its row only)."""
    keys = list(section["metric_keys"])
    test = section.get("test") or {}
    test_keys = list((test.get("metrics") or {}).keys())
    head = ["run", *section["keys"], "val_n", *[f"val_{k}" for k in keys], "test_n",
            *[f"test_{k}" for k in test_keys], "training_s", "status", "best", "skipped"]
    body = []
    for r in section["rows"]:
        won = r["run"] == section.get("winner") and test
        body.append([r["run"], *[r["settings"].get(k, "") for k in section["keys"]], r["n"] or "",
                     *[r["metrics"].get(k, "") for k in keys], test.get("n", "") if won else "",
                     *[test["metrics"].get(k, "") if won else "" for k in test_keys],
                     "" if r["training_s"] is None else r["training_s"], r["status"] or "", r["best"],
                     r["skipped"] or ""])
    return head, body
