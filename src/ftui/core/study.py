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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ftui.core.backends import backend as backend_facts, backend_names
from ftui.core.errors import ConfigError, RunNotFoundError
from ftui.core.events import read_events
from ftui.core.paths import ftui_home
from ftui.core.runs import Run, new_run_id, write_json_atomic
from ftui.core.scoring import VARIANTS
from ftui.core.sweep import Sweep, render_sweep_markdown, render_sweep_text, sweep_csv_rows, sweep_section

PRIMARY = {"sql": "execution", "funcrep": "exact", "json": "exact", "text": "exact"}
"""The metric "most accurate" is judged by, per task."""


def studies_dir() -> Path:
    return ftui_home() / "studies"


@dataclass(frozen=True)
class Member:
    """One run of a study, as ``study.json`` lists it."""

    id: str
    backend: str
    model: str
    method: str | None = None
    """Its backend's training method (``ftui study --methods``); None for a backend that trains one way."""
    variants: tuple[str, ...] = ()
    """The variants its runner evaluates; empty: all of them. Runs of one backend and model
    that differ in method only evaluate base and k-shot once, in the first of them."""
    settings: Mapping[str, str] = field(default_factory=dict)
    """A sweep's run: its combination of the grid (key -> value as given)."""
    heldout: str = ""
    """Where its runner evaluates: a sweep's run evaluates on its validation rows (``core.sweep.VAL``)."""

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Member:
        return cls(id=str(obj["id"]), backend=str(obj.get("backend") or ""), model=str(obj.get("model") or ""),
                   method=obj.get("method"), variants=tuple(obj.get("variants") or ()),
                   settings=dict(obj.get("settings") or {}), heldout=str(obj.get("heldout") or ""))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "backend": self.backend, "model": self.model}
        out.update({"method": self.method} if self.method else {})
        out.update({"variants": list(self.variants)} if self.variants else {})
        out.update({"settings": dict(self.settings), "heldout": self.heldout} if self.settings else {})
        return out


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

    def members(self) -> list[Member]:
        return [Member.from_json(r) for r in self.info["runs"]]

    def runs(self) -> list[Run]:
        from ftui.core.paths import runs_dir

        return [Run(runs_dir() / m.id) for m in self.members()]

    @property
    def sweep(self) -> Sweep | None:
        """The study's sweep (``--grid``); None for a study of backends, models or methods."""
        return Sweep.from_json(self.info.get("sweep"))

    def write_sweep(self, sweep: Sweep) -> None:
        """Record the sweep's progress (skipped runs, the winner); the driver holds the study's lock."""
        write_json_atomic(self.dir / "study.json", {**self.info, "sweep": sweep.to_json()})


def method_of(run: Run) -> str | None:
    """The run's training method, where its backend has several (``BackendFacts.methods``)."""
    return run.spec.setting("method") if backend_facts(run.spec.backend).methods else None


def create_study(*, preset: str | None, label: str, runs: Sequence[Run],
                 variants: Mapping[str, Sequence[str]] | None = None, root: Path | None = None,
                 combos: Mapping[str, Mapping[str, str]] | None = None, sweep: Sweep | None = None) -> Study:
    """``variants``: run id -> what its runner evaluates, for runs that evaluate less than all.
    ``sweep`` with ``combos`` (run id -> its combination of the grid): a sweep, whose runs
    evaluate the fine-tuned model on their validation rows."""
    from ftui.core.sweep import VAL

    root = root or studies_dir()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / new_run_id(label)
    folder.mkdir()
    combos = combos or {}
    members = [Member(id=r.id, backend=r.spec.backend, model=r.spec.model, method=method_of(r),
                      variants=tuple((variants or {}).get(r.id, ())), settings=dict(combos.get(r.id, {})),
                      heldout=VAL if r.id in combos else "") for r in runs]
    write_json_atomic(folder / "study.json", {
        "id": folder.name, "created": round(time.time(), 3), "preset": preset,
        "runs": [m.to_json() for m in members], **({"sweep": sweep.to_json()} if sweep else {}),
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


FOOTPRINT_KEYS = ("trainable_params", "total_params", "trainable_pct", "peak_mem_bytes", "tokens_per_s",
                  "saved_bytes")
"""What a fine-tuned row says about its training beyond time and money (None where unknown)."""


def _footprint(run: Run, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Trainable parameters, peak memory, mean tokens/s and the size of the saved weights of a
    run's training: from its ``hw`` and ``train`` events and its ``adapter/`` or ``model/``."""
    from ftui.core.machine import HwReading

    readings = [HwReading.from_event(e) for e in events if e["type"] == "hw"]
    counted = [r for r in readings if r.trainable_params is not None]
    trainable = counted[-1].trainable_params if counted else None
    total = counted[-1].total_params if counted else None
    peaks = [r.peak_mem_bytes for r in readings if r.peak_mem_bytes]
    rss = [r.rss_bytes for r in readings if r.rss_bytes]  # runs whose hw events carry no peak
    rates = [e["tokens_per_s"] for e in events if e["type"] == "train"]
    weights = run.trained_weights()
    return {
        "trainable_params": trainable, "total_params": total,
        "trainable_pct": round(100 * trainable / total, 4) if trainable is not None and total else None,
        "peak_mem_bytes": peaks[-1] if peaks else (max(rss) if rss else None),
        "tokens_per_s": round(sum(rates) / len(rates), 1) if rates else None,
        "saved_bytes": sum(f.stat().st_size for f in weights.rglob("*") if f.is_file()) if weights else None,
    }


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


def study_table(study: Study) -> dict[str, Any]:
    """``table`` of the study's runs, with its sweep's part where it is a sweep."""
    return table(study.runs(), sweep=study.sweep, members=study.members())


def table(runs: Sequence[Run], *, sweep: Sweep | None = None, members: Sequence[Member] = ()) -> dict[str, Any]:
    """The comparison: one row per run and variant, with the cheapest and the most accurate marked.

    Base and k-shot rows appear once per backend and model: runs that differ in method only
    answer them the same way (the study evaluates them in the first run only). A sweep
    (``sweep`` and its ``members``) adds ``sweep``: its runs by their validation metric; its
    rows here are the test rows of the winner alone."""
    tasks = {r.spec.task for r in runs}
    task = tasks.pop() if len(tasks) == 1 else None
    primary = PRIMARY.get(task or "", "exact")
    rows: list[dict[str, Any]] = []
    metric_keys: list[str] = []
    untrained_seen: set[tuple[str, str, str]] = set()
    for run in runs:
        events = read_events(run.events_path)
        train_s, train_usd = _training(run, events)
        footprint = _footprint(run, events)
        method = method_of(run)
        evals = run.eval_metrics()
        for variant in VARIANTS:
            m = evals.get(variant)
            if m is None:
                continue
            tuned = variant == "finetuned"
            if not tuned:
                if (run.spec.backend, run.spec.model, variant) in untrained_seen:
                    continue
                untrained_seen.add((run.spec.backend, run.spec.model, variant))
            metrics = m.get("metrics", {})
            metric_keys += [k for k in metrics if k not in metric_keys]
            rows.append({
                "run": run.id, "backend": run.spec.backend, "model": run.spec.model,
                "variant": variant, "method": method if tuned else None, "n": m.get("n"), "metrics": metrics,
                "training_s": train_s if tuned else None,
                "training_usd": train_usd if tuned else None,
                "learning_rate": run.spec.setting("learning_rate") if tuned else None,
                **{k: footprint[k] if tuned else None for k in FOOTPRINT_KEYS},
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
    methods = list(dict.fromkeys(m for m in map(method_of, runs) if m is not None))
    if sweep is not None:
        methods = []  # a sweep over methods names its method in the sweep's columns
    return {"task": task, "primary_metric": primary, "metric_keys": metric_keys, "methods": methods,
            "rows": rows, "runs": [r.id for r in runs],
            **({"sweep": sweep_section(runs, members, sweep, primary=primary)} if sweep is not None else {})}


def by_method(data: Mapping[str, Any]) -> bool:
    """The study compares training methods: its table gains the method's columns."""
    return len(data.get("methods") or ()) > 1


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


# -- words for the numbers (the markdown and text tables, the Study screen) ---------------------

def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes}m{s:02d}s" if minutes else f"{s}s"


def size(n: float | None) -> str:
    """Bytes in binary units: ``812 B``, ``3.4 MiB``, ``1.2 GiB``."""
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
    return f"{int(n)} B"


def params(row: Mapping[str, Any]) -> str:
    """Trainable parameters and their share of the model: ``922K (0.68%)``."""
    from ftui.core.machine import trainable_text

    n = row.get("trainable_params")
    return "-" if n is None else trainable_text(n, row.get("total_params"), short=True)


def rate(tokens_per_s: float | None) -> str:
    if tokens_per_s is None:
        return "-"
    return f"{tokens_per_s:,.0f}" if tokens_per_s >= 10 else f"{tokens_per_s:.1f}"


def learning_rate(value: float | None) -> str:
    """``2e-4``, ``1.5e-4``: a learning rate as people write it."""
    if value is None:
        return "-"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def variant_label(row: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """``base``, ``kshot``, ``finetuned``; in a study of methods a fine-tuned row is named by its
    method (``lora``, ``full``)."""
    return row["method"] if by_method(data) and row["method"] else row["variant"]


def _learning_rates_differ(rows: Sequence[Mapping[str, Any]]) -> bool:
    return len({r["learning_rate"] for r in rows if r["learning_rate"] is not None}) > 1


def render_markdown(data: Mapping[str, Any], *, title: str = "ftui study") -> str:
    keys = list(data["metric_keys"])
    methods = by_method(data)
    rates = methods and _learning_rates_differ(data["rows"])
    head = ["backend", "model", "variant", *(["method"] if methods else []), "n", *keys,
            *(["trainable parameters", "peak memory", "tokens/s"] if methods else []), "training time",
            *(["saved"] if methods else []), *(["learning rate"] if rates else []),
            "training cost", "eval cost / 1k", ""]
    note = (" Trainable parameters are the share of the model that trains; peak memory is the training "
            "process's peak (CUDA memory on a GPU, resident memory on a CPU); tokens/s the mean over "
            "training; saved is the size of `adapter/` or `model/`." if methods else "")
    lines = [f"# {title}", "",
             f"Task: {data['task'] or 'mixed'}; most accurate by `{data['primary_metric']}`; cheapest by "
             "training cost plus the cost of evaluating 1,000 examples. Base and k-shot rows need no training."
             + note, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in data["rows"]:
        marks = " ".join(m for m, on in (("most accurate", r.get("most_accurate")), ("cheapest", r.get("cheapest"))) if on)
        cells = [r["backend"] or "", f"`{r['model']}`", r["variant"], *([r["method"] or ""] if methods else []),
                 str(r["n"]), *[f"{r['metrics'][k]:.1%}" if k in r["metrics"] else "-" for k in keys],
                 *([params(r), size(r["peak_mem_bytes"]), rate(r["tokens_per_s"])] if methods else []),
                 _duration(r["training_s"]), *([size(r["saved_bytes"])] if methods else []),
                 *([learning_rate(r["learning_rate"])] if rates else []),
                 _money(r["training_usd"]), _money(r["eval_usd_per_1k"]),
                 f"**{marks}**" if marks else ""]
        lines.append("| " + " | ".join(cells) + " |")
    if data.get("sweep"):  # the choice first; the table above it holds the winner's test rows
        lines[2:2] = render_sweep_markdown(data["sweep"]) + ["## Test split (the best run only)", ""]
    lines += ["", "Runs: " + ", ".join(f"`{r}`" for r in data["runs"]), ""]
    return "\n".join(lines)


SHARED_COLUMNS = ("backend", "model", "train $", "eval $/1k")
"""Text columns that move to a line above the table when every row that has a value has the same one."""


METRIC_HEADS = {"execution_strict": "exec_strict", "function_accuracy": "function_acc",
                "field_agreement": "field_agree", "schema_valid": "schema_ok"}
"""Shorter text-table headings of long metric names (the others are cut at 12 characters)."""


def _head(metric: str) -> str:
    return METRIC_HEADS.get(metric, metric[:12])


def render_text(data: Mapping[str, Any]) -> str:
    """The table for a terminal. A study of methods keeps to 80 columns where it can: columns
    whose value every row shares go to a line above it, fine-tuned rows are named by method, and
    a second table says what each training took."""
    keys = list(data["metric_keys"])
    head = ["backend", "model", "variant", *[_head(k) for k in keys], "train", "train $", "eval $/1k", ""]
    body = []
    for r in data["rows"]:
        marks = ",".join(m for m, on in (("best", r.get("most_accurate")), ("cheapest", r.get("cheapest"))) if on)
        body.append([r["backend"] or "", _short(r["model"] or ""), variant_label(r, data),
                     *[f"{r['metrics'][k]:.1%}" if k in r["metrics"] else "-" for k in keys],
                     _duration(r["training_s"]), _money(r["training_usd"]), _money(r["eval_usd_per_1k"]), marks])
    shared, head, body = _share_columns(head, body, SHARED_COLUMNS) if by_method(data) else ([], head, body)
    out = ["  ".join(f"{name}: {value}" for name, value in shared)] if shared else []
    out += _columns(head, body)
    if by_method(data):
        out += ["", *_training_text(data)]
    if data.get("sweep"):
        out = [*render_sweep_text(data["sweep"]), "", "test split (the best run; base and k-shot):", *out]
    return "\n".join(out)


def _training_text(data: Mapping[str, Any]) -> list[str]:
    """What each method's training took: one line per fine-tuned run that has a method."""
    rows = [r for r in data["rows"] if r["variant"] == "finetuned" and r["method"]]
    primary = data["primary_metric"]
    rates = _learning_rates_differ(rows)
    head = ["backend", "model", "method", "trainable", "peak mem", "tok/s", "train", "saved",
            *(["lr"] if rates else []), _head(primary)]
    body = [[r["backend"] or "", _short(r["model"] or "", 20), r["method"], params(r), size(r["peak_mem_bytes"]),
             rate(r["tokens_per_s"]), _duration(r["training_s"]), size(r["saved_bytes"]),
             *([learning_rate(r["learning_rate"])] if rates else []),
             f"{r['metrics'][primary]:.1%}" if primary in r["metrics"] else "-"] for r in rows]
    _, head, body = _share_columns(head, body, ("backend", "model"))
    return _columns(head, body) if body else []


def _share_columns(head: list[str], body: list[list[str]],
                   names: Sequence[str]) -> tuple[list[tuple[str, str]], list[str], list[list[str]]]:
    """(name, value) of the ``names`` columns that hold one value (ignoring "-") in two or more
    rows, and the head and body without them."""
    shared = []
    for name in names:
        values = {row[head.index(name)] for row in body} - {"-"}
        if len(body) > 1 and len(values) == 1:
            shared.append((name, values.pop()))
    keep = [i for i, name in enumerate(head) if name not in dict(shared)]
    return shared, [head[i] for i in keep], [[row[i] for i in keep] for row in body]


def _columns(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    return ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head, *body]]


def _short(model: str, width: int = 28) -> str:
    return model if len(model) <= width else "..." + model[-(width - 3):]


def render_csv(data: Mapping[str, Any]) -> str:
    """One row per run and variant; a sweep's table is one row per run of the sweep instead
    (its settings, validation metrics, and the winner's test metrics on its row)."""
    keys = list(data["metric_keys"])
    buf = io.StringIO()
    w = csv.writer(buf)
    if data.get("sweep"):
        head, body = sweep_csv_rows(data["sweep"])
        w.writerows([head, *body])
        return buf.getvalue()
    w.writerow(["run", "backend", "model", "variant", "method", "n", *keys, "training_s", "training_usd",
                "learning_rate", *FOOTPRINT_KEYS, "eval_usd_per_1k", "most_accurate", "cheapest"])

    def cell(value: Any) -> Any:
        return "" if value is None else value

    for r in data["rows"]:
        w.writerow([r["run"], r["backend"], r["model"], r["variant"], cell(r["method"]), r["n"],
                    *[r["metrics"].get(k, "") for k in keys], cell(r["training_s"]), cell(r["training_usd"]),
                    cell(r["learning_rate"]), *[cell(r[k]) for k in FOOTPRINT_KEYS],
                    cell(r["eval_usd_per_1k"]), r.get("most_accurate", False), r.get("cheapest", False)])
    return buf.getvalue()


def export_study(study: Study, *, out: Path | None = None) -> list[Path]:
    """``table.md``, ``table.json``, ``table.csv`` into the study folder (or ``out``)."""
    data = study_table(study)
    folder = out or study.dir
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "table.json", {"study": study.id, **data})
    (folder / "table.md").write_text(render_markdown(data, title=f"ftui study {study.id}"), encoding="utf-8")
    (folder / "table.csv").write_text(render_csv(data), encoding="utf-8")
    return [folder / "table.md", folder / "table.json", folder / "table.csv"]


def delete_study(study: Study) -> None:
    """Remove the study's folder (its table and log); its runs stay, each removable on its own."""
    shutil.rmtree(study.dir)
