"""The shareable result of a run: ``summary.md``, ``summary.json``, ``predictions.csv``, ``loss.png``."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

from ftui.core.config import to_plain
from ftui.core.early_stopping import describe
from ftui.core.events import read_events
from ftui.core.mfu import mfu_text
from ftui.core.runs import Run, write_json_atomic
from ftui.core.scoring import VARIANTS, count_text, left_out, read_predictions

FORMATS = ("md", "json", "csv")
FILENAMES = {"md": "summary.md", "json": "summary.json", "csv": "predictions.csv"}
CSV_COLUMNS = ("variant", "index", "input", "reference", "output", "valid", "exact", "execution",
               "error", "latency_s")


def summary_data(run: Run) -> dict[str, Any]:
    """Everything the summary shows, as plain data (this is ``summary.json``)."""
    spec = run.spec
    events = read_events(run.events_path)
    train = [(e["step"], e["loss"]) for e in events if e["type"] == "train"]
    val = [(e["step"], e["loss"]) for e in events if e["type"] == "val"]
    last_train = next((e for e in reversed(events) if e["type"] == "train"), None)
    hw = next((e for e in reversed(events) if e["type"] == "hw"), {})
    cost = next((e for e in reversed(events) if e["type"] == "cost"), None)
    evals = run.eval_metrics()
    ordered = {v: evals[v] for v in (*VARIANTS, *sorted(set(evals) - set(VARIANTS))) if v in evals}
    info = run.summary(events)
    return {
        "id": run.id,
        "status": info["status"],
        "ftui_version": spec.ftui_version,
        "preset": spec.preset,
        "task": spec.task,
        "backend": spec.backend,
        "model": spec.model,
        # where the rows came from (run.json's data: source, sha256, format, fields, rows, used),
        # how they were split and the split's sizes
        "data": {**to_plain(spec.data), "split": to_plain(spec.split), "split_sizes": dict(spec.split_sizes)},
        # as run.json holds them: an older run's lacks the settings made after it
        "hyperparameters": spec.recorded_settings(),
        "unrecorded_settings": list(spec.unrecorded_settings),
        "eval_settings": to_plain(spec.eval),
        # duration_s: created to ended on the clock; train_s, eval_s: working time (Run.summary)
        "time": {k: info[k] for k in ("created", "ended", "duration_s", "train_s", "eval_s")},
        "training": {
            "steps": last_train["step"] if last_train else None,
            "tokens": last_train["tokens"] if last_train else None,
            "tokens_per_s": last_train["tokens_per_s"] if last_train else None,
            # the share of the GPUs' bf16 peak used at that rate (core.mfu; null on a CPU or a GPU
            # without a known peak), and the GPU
            "mfu": info["mfu"],
            "gpu_name": hw.get("gpu_name"),
            "final_loss": last_train["loss"] if last_train else None,
            "final_val_loss": val[-1][1] if val else None,
            "method": info["method"],
            "trainable_params": info["trainable_params"],
            "total_params": info["total_params"],
            "peak_mem_bytes": info["peak_mem_bytes"],
            "peak_rss": info["peak_rss"],
            # The step early stopping ended training at (null: it did not), the step whose weights
            # are the result (keep_best; null: the last step's) and its validation loss.
            "stopped_early_at": info["stopped_early_at"],
            "kept_step": info["kept_step"],
            "best_val_loss": info["best_val_loss"],
            # The trained weights, relative to the run directory: adapter/ or model/ (full).
            "weights": run.trained_weights().name if run.trained_weights() else None,
        },
        # Where the model is: the trained weights (absolute) and each model export (ftui export --model).
        "model_files": {label: str(path) for label, path in run.where()},
        "cost": {k: cost[k] for k in ("usd", "projected_usd", "basis") if k in cost} if cost else None,
        "eval": {v: {"n": m.get("n"), "metrics": m.get("metrics", {}),
                     **{k: m[k] for k in ("n_scorable", "model", "duration_s", "cost_usd") if k in m}}
                 for v, m in ordered.items()},
        "loss": {"train": train, "val": val},
    }


def render_markdown(data: dict[str, Any], *, plot: str | None) -> str:
    """``summary.md``: config, data, metrics per variant with deltas, cost, time, loss plot."""
    lines = [f"# ftui run {data['id']}", ""]
    lines += ["| | |", "|---|---|"]
    rows = [
        ("status", data["status"]), ("preset", data["preset"]), ("task", data["task"]),
        ("backend", data["backend"]), ("model", data["model"]), ("ftui", data["ftui_version"]),
    ]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows]
    source = data["data"]
    sizes = source.get("split_sizes") or {}
    lines += ["", "## Data", ""]
    if source.get("source"):
        sha = f" (sha256 `{source['sha256'][:12]}`)" if source.get("sha256") else ""
        lines.append(f"Source: `{source['source']}`{sha}")
    if sizes:
        lines.append("Split: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    hp = data["hyperparameters"]
    if hp:
        lines += ["", "## Settings", "", "| setting | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in hp.items()]
        if data.get("unrecorded_settings"):
            lines += ["", "Not set (older run, made before these settings existed): "
                      + ", ".join(f"`{k}`" for k in data["unrecorded_settings"]) + "."]
    lines += ["", "## Evaluation", ""]
    lines += _metrics_table(data["eval"]) or ["No evaluation recorded yet."]
    lines += ["", "## Evaluation settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)}{' (all test examples)' if k == 'limit' and v == 0 else ''} |"
              for k, v in data["eval_settings"].items()]
    tr, cost, t = data["training"], data["cost"], data["time"]
    lines += ["", "## Training, cost and time", ""]
    lines.append(f"- steps: {_cell(tr['steps'])}, trained tokens: {_cell(tr['tokens'])}, "
                 f"tokens/s: {_cell(tr['tokens_per_s'])}"
                 + (f", {mfu_text(tr['mfu'])} of {tr.get('gpu_name') or 'the GPU'}'s bf16 peak"
                    if tr.get("mfu") is not None else ""))
    lines.append(f"- final train loss: {_cell(tr['final_loss'])}, final validation loss: {_cell(tr['final_val_loss'])}")
    validation = describe(stopped_early_at=tr.get("stopped_early_at"), kept_step=tr.get("kept_step"),
                          best_loss=tr.get("best_val_loss"), patience=hp.get("early_stop_patience", 0))
    if validation:  # "stopped early at step 40: ...; kept step 20 (val 1.2340)"
        lines.append(f"- validation: {validation}")
    if tr.get("trainable_params"):
        from ftui.core.machine import trainable_text

        lines.append(f"- method: {tr.get('method') or '-'}, trained {trainable_text(tr['trainable_params'], tr.get('total_params'))}"
                     + (f", peak memory {tr['peak_mem_bytes'] / 2**30:.2f} GiB" if tr.get("peak_mem_bytes") else ""))
    if tr.get("peak_rss"):
        lines.append(f"- peak RSS: {tr['peak_rss'] / 2**30:.2f} GiB (the training process's resident memory)")
    if tr.get("weights"):
        lines.append(f"- trained weights: `{tr['weights']}/` in the run directory")
    for label, path in (data.get("model_files") or {}).items():
        if label.startswith("export "):
            lines.append(f"- exported {label.split(' ', 1)[1]}: `{path}`")
    if cost:
        lines.append(f"- cost: ${cost['usd']:.4f} ({cost.get('basis', '')})")
    else:
        lines.append("- cost: not recorded")
    lines.append(f"- time: {_work_time(t)}")
    if plot:
        lines += ["", f"![training and validation loss]({plot})"]
    return "\n".join(lines) + "\n"


def _metrics_table(evals: dict[str, Any]) -> list[str]:
    if not evals:
        return []
    keys: list[str] = []
    for m in evals.values():
        keys += [k for k in m["metrics"] if k not in keys]
    head = ["variant", "n", *keys]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = evals.get("base", {}).get("metrics", {})
    for variant, m in evals.items():
        cells = [variant, count_text(m)]
        for k in keys:
            v = m["metrics"].get(k)
            cell = "" if v is None else f"{v:.1%}"
            if variant != "base" and v is not None and isinstance(base.get(k), (int, float)):
                cell += f" ({(v - base[k]) * 100:+.1f})"
            cells.append(cell)
        out.append("| " + " | ".join(cells) + " |")
    if base and len(evals) > 1:
        out += ["", "Rates; in brackets the change from `base` in percentage points."]
    if any(left_out(m) for m in evals.values()):
        out += ["", "Examples whose reference cannot run on its context are not scored: every "
                "rate but `valid` is over the scorable ones."]
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return str(v).replace("|", "\\|")


def _work_time(t: dict[str, Any]) -> str:
    """Working time by stage, then the time on the clock from creation to the end."""
    if t.get("train_s") is None:
        work = "—"
    else:
        evaluation = f", evaluation {_duration(t['eval_s'])}" if t.get("eval_s") else ""
        work = f"training {_duration(t['train_s'])}{evaluation}"
    if t.get("duration_s") is None:
        return work
    return f"{work} (working time; {_duration(t['duration_s'])} from creation to the end, pauses included)"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def plot_loss(data: dict[str, Any], path: Path) -> bool:
    """Draw train and validation loss to ``path`` (PNG); False when there is nothing to draw."""
    train, val = data["loss"]["train"], data["loss"]["val"]
    if not train and not val:
        return False
    import matplotlib  # heavy: only when a plot is exported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    if train:
        ax.plot([s for s, _ in train], [v for _, v in train], label="train", linewidth=1.2)
    if val:
        ax.plot([s for s, _ in val], [v for _, v in val], "o-", label="validation", linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{data['id']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_csv(run: Run, path: Path) -> int:
    """Every variant's predictions in one CSV; returns the number of rows."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for variant in run.eval_metrics():
            for rec in read_predictions(run.dir, variant):
                writer.writerow({"variant": variant, **rec})
                n += 1
    return n


def export(run: Run, *, fmt: str | None = None, out: Path | None = None) -> list[Path]:
    """Write one format to ``out`` (a file), or all of them into ``out`` (a folder, default the run)."""
    data = summary_data(run)
    if fmt is None:
        folder = out or run.dir
        folder.mkdir(parents=True, exist_ok=True)
        targets = {f: folder / FILENAMES[f] for f in FORMATS}
    else:
        target = out or run.dir / FILENAMES[fmt]
        if target.is_dir():
            target = target / FILENAMES[fmt]
        target.parent.mkdir(parents=True, exist_ok=True)
        targets = {fmt: target}
    written: list[Path] = []
    if "md" in targets:
        png = targets["md"].parent / "loss.png"
        has_plot = plot_loss(data, run.dir / "loss.png")
        if has_plot and png != run.dir / "loss.png":
            shutil.copyfile(run.dir / "loss.png", png)
        if has_plot:
            written.append(png)
        targets["md"].write_text(render_markdown(data, plot="loss.png" if has_plot else None), encoding="utf-8")
        written.append(targets["md"])
    if "json" in targets:
        write_json_atomic(targets["json"], data)
        written.append(targets["json"])
    if "csv" in targets:
        write_csv(run, targets["csv"])
        written.append(targets["csv"])
    return written
