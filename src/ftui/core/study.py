"""Studies: several runs on the same data and held-out split, and the comparison table that
published posts show (LoRA on an open model vs a hosted fine-tune vs few-shot prompting).

A study is ``$FTUI_HOME/studies/<id>/study.json`` (which runs belong to it); once they end,
the table is written next to it as ``table.md``, ``table.json`` and ``table.csv``. Every
number in it comes from the runs' directories.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ftui.core.backends import backend as backend_facts, backend_names
from ftui.core.errors import ConfigError, RunNotFoundError
from ftui.core.events import read_events
from ftui.core.paths import ftui_home
from ftui.core.runs import Run, new_run_id, write_json_atomic
from ftui.core.scoring import VARIANTS

PRIMARY = {"sql": "execution", "funcrep": "exact", "json": "exact", "text": "exact"}
"""The metric "most accurate" is judged by, per task."""


def studies_dir() -> Path:
    return ftui_home() / "studies"


@dataclass(frozen=True)
class Study:
    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def info(self) -> dict[str, Any]:
        import json

        return json.loads((self.dir / "study.json").read_text(encoding="utf-8"))

    def runs(self) -> list[Run]:
        from ftui.core.paths import runs_dir

        return [Run(runs_dir() / r["id"]) for r in self.info["runs"]]


def create_study(*, preset: str | None, label: str, runs: Sequence[Run], root: Path | None = None) -> Study:
    root = root or studies_dir()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / new_run_id(label)
    folder.mkdir()
    write_json_atomic(folder / "study.json", {
        "id": folder.name, "created": round(time.time(), 3), "preset": preset,
        "runs": [{"id": r.id, "backend": r.spec.backend, "model": r.spec.model} for r in runs],
    })
    return Study(folder)


def list_studies(root: Path | None = None) -> list[Study]:
    """Every study, oldest first (ids sort by creation time)."""
    root = root or studies_dir()
    return [Study(p) for p in sorted(root.glob("*")) if (p / "study.json").is_file()] if root.is_dir() else []


def resolve_study(ref: str, root: Path | None = None) -> Study:
    root = root or studies_dir()
    found = [s.dir for s in list_studies(root)]
    if ref == "latest" and found:
        return Study(found[-1])
    matches = [p for p in found if p.name == ref] or [p for p in found if p.name.startswith(ref)]
    if len(matches) == 1:
        return Study(matches[0])
    if not matches:
        raise RunNotFoundError(f"no study matches '{ref}' in {root}")
    raise RunNotFoundError(f"'{ref}' matches {len(matches)} studies; give more of the id")


def parse_models(models: Sequence[str], backends: Sequence[str]) -> list[tuple[str, str | None]]:
    """``--models`` items (``backend:model`` or a bare model for a one-backend study) -> the
    (backend, model) pairs to run; each backend without a model gets its preset default."""
    pairs: list[tuple[str, str | None]] = []
    for item in models:
        backend, sep, model = item.partition(":")
        if sep and backend in backend_names():
            if backend not in backends:
                raise ConfigError(f"--models {item}: backend '{backend}' is not in --backends {','.join(backends)}")
            pairs.append((backend, model))
        elif len(backends) == 1:
            pairs.append((backends[0], item))
        else:
            raise ConfigError(f"--models {item}: say which backend, e.g. "
                              + " or ".join(f"{b}:{item}" for b in backends))
    for backend in backends:
        if not any(b == backend for b, _ in pairs):
            pairs.append((backend, None))
    return pairs


# -- the table ---------------------------------------------------------------------------------

def _training(run: Run, events: Sequence[Mapping[str, Any]]) -> tuple[float | None, float | None]:
    """(training wall time in s, training cost in USD) of a run, from its events and job.json."""
    started = next((e["ts"] for e in events if e["type"] == "status" and e["state"] == "running"), None)
    ended = next((e["ts"] for e in events if e["type"] == "status" and e["state"] in ("evaluating", "succeeded",
                                                                                         "cancelled", "failed")
                  and started is not None and e["ts"] >= started), None)
    seconds = round(ended - started, 1) if started is not None and ended is not None else None
    if backend_facts(run.spec.backend).remote:  # the service's bill, recorded in job.json
        return seconds, run.job().get("billed_usd")
    costs = [e for e in events if e["type"] == "cost" and (ended is None or e["ts"] <= ended + 1)]
    return seconds, costs[-1]["usd"] if costs else 0.0


def _eval_cost_per_1k(run: Run, metrics: Mapping[str, Any]) -> float | None:
    n = metrics.get("n") or 0
    if not n:
        return None
    if metrics.get("cost_usd") is not None:  # OpenAI: the reported usage x prices
        return metrics["cost_usd"] / n * 1000
    per_hour = run.spec.setting("price_per_hour")
    duration = metrics.get("duration_s")
    if duration is None:
        return None
    if per_hour is None:
        from ftui.core.cost import hardware_price

        per_hour = hardware_price(_gpu_name(run)).per_hour
    return per_hour * duration / 3600 / n * 1000


def _gpu_name(run: Run) -> str | None:
    """The GPU the run's first ``hw`` reading names (None on a CPU, or where none is named)."""
    from ftui.core.machine import HwReading

    for e in read_events(run.events_path):
        if e["type"] == "hw":
            name = HwReading.from_event(e).gpu_name
            if name:
                return name
    return None


def table(runs: Sequence[Run]) -> dict[str, Any]:
    """The comparison: one row per run and variant, with the cheapest and the most accurate marked."""
    tasks = {r.spec.task for r in runs}
    task = tasks.pop() if len(tasks) == 1 else None
    primary = PRIMARY.get(task or "", "exact")
    rows: list[dict[str, Any]] = []
    metric_keys: list[str] = []
    for run in runs:
        events = read_events(run.events_path)
        train_s, train_usd = _training(run, events)
        evals = run.eval_metrics()
        for variant in VARIANTS:
            m = evals.get(variant)
            if m is None:
                continue
            metrics = m.get("metrics", {})
            metric_keys += [k for k in metrics if k not in metric_keys]
            tuned = variant == "finetuned"
            rows.append({
                "run": run.id, "backend": run.spec.backend, "model": run.spec.model,
                "variant": variant, "n": m.get("n"), "metrics": metrics,
                "training_s": train_s if tuned else None,
                "training_usd": train_usd if tuned else None,
                "eval_usd_per_1k": _round(_eval_cost_per_1k(run, m)),
                "status": run.status().get("state"),
            })
    for row in rows:
        row["total_usd_per_1k"] = (row["training_usd"] or 0.0) + (row["eval_usd_per_1k"] or 0.0)
    if rows:
        best = max(r["metrics"].get(primary, 0.0) for r in rows)
        cheapest = min(r["total_usd_per_1k"] for r in rows)
        for row in rows:
            row["most_accurate"] = row["metrics"].get(primary, 0.0) == best
            row["cheapest"] = row["total_usd_per_1k"] == cheapest
    return {"task": task, "primary_metric": primary, "metric_keys": metric_keys, "rows": rows,
            "runs": [r.id for r in runs]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes}m{s:02d}s" if minutes else f"{s}s"


def render_markdown(data: Mapping[str, Any], *, title: str = "ftui study") -> str:
    keys = list(data["metric_keys"])
    head = ["backend", "model", "variant", "n", *keys, "training time", "training cost", "eval cost / 1k", ""]
    lines = [f"# {title}", "",
             f"Task: {data['task'] or 'mixed'}; most accurate by `{data['primary_metric']}`; cheapest by "
             "training cost plus the cost of evaluating 1,000 examples. Base and k-shot rows need no training.",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in data["rows"]:
        marks = " ".join(m for m, on in (("most accurate", r.get("most_accurate")), ("cheapest", r.get("cheapest"))) if on)
        cells = [r["backend"] or "", f"`{r['model']}`", r["variant"], str(r["n"]),
                 *[f"{r['metrics'][k]:.1%}" if k in r["metrics"] else "-" for k in keys],
                 _duration(r["training_s"]), _money(r["training_usd"]), _money(r["eval_usd_per_1k"]),
                 f"**{marks}**" if marks else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Runs: " + ", ".join(f"`{r}`" for r in data["runs"]), ""]
    return "\n".join(lines)


def render_text(data: Mapping[str, Any]) -> str:
    """The table for a terminal."""
    keys = list(data["metric_keys"])
    head = ["backend", "model", "variant", *[k[:10] for k in keys], "train", "train $", "eval $/1k", ""]
    body = []
    for r in data["rows"]:
        marks = ",".join(m for m, on in (("best", r.get("most_accurate")), ("cheapest", r.get("cheapest"))) if on)
        body.append([r["backend"] or "", _short(r["model"] or ""), r["variant"],
                     *[f"{r['metrics'][k]:.1%}" if k in r["metrics"] else "-" for k in keys],
                     _duration(r["training_s"]), _money(r["training_usd"]), _money(r["eval_usd_per_1k"]), marks])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    out = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head, *body]]
    return "\n".join(out)


def _short(model: str, width: int = 28) -> str:
    return model if len(model) <= width else "..." + model[-(width - 3):]


def render_csv(data: Mapping[str, Any]) -> str:
    keys = list(data["metric_keys"])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["run", "backend", "model", "variant", "n", *keys, "training_s", "training_usd",
                "eval_usd_per_1k", "most_accurate", "cheapest"])
    for r in data["rows"]:
        w.writerow([r["run"], r["backend"], r["model"], r["variant"], r["n"],
                    *[r["metrics"].get(k, "") for k in keys], r["training_s"] if r["training_s"] is not None else "",
                    r["training_usd"] if r["training_usd"] is not None else "",
                    r["eval_usd_per_1k"] if r["eval_usd_per_1k"] is not None else "",
                    r.get("most_accurate", False), r.get("cheapest", False)])
    return buf.getvalue()


def export_study(study: Study, *, out: Path | None = None) -> list[Path]:
    """``table.md``, ``table.json``, ``table.csv`` into the study folder (or ``out``)."""
    data = table(study.runs())
    folder = out or study.dir
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "table.json", {"study": study.id, **data})
    (folder / "table.md").write_text(render_markdown(data, title=f"ftui study {study.id}"), encoding="utf-8")
    (folder / "table.csv").write_text(render_csv(data), encoding="utf-8")
    return [folder / "table.md", folder / "table.json", folder / "table.csv"]


def delete_study(study: Study) -> None:
    """Remove the study's folder (its table and log); its runs stay, each removable on its own."""
    shutil.rmtree(study.dir)
