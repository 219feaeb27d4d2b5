#!/usr/bin/env python
"""Resident memory over a long CPU run: ftui's local backend against TRL's ``SFTTrainer`` defaults.

    .venv/bin/python benchmarks/memory.py --quick     # a few minutes on 2 cores
    .venv/bin/python benchmarks/memory.py             # the spider preset's shape: 150 steps, batch 8, max length 512

Both sides train the embedded SmolLM2-135M with LoRA (r=8 on q, k, v, o) on the same synthetic
rows, whose lengths spread evenly over [max_length / 2, max_length] tokens (every batch a new
shape, as a text-to-SQL dataset's are), each in its own child process of ``_training.py`` with
the same meter as ``train_throughput.py`` (whose docstring says what the TRL side runs). At the
end of every optimizer step the meter reads the process's resident set (``VmRSS``), the most it
reached during that step (``VmHWM``, set back after each reading) and glibc's heap figures. The
figures per side:

- **peak**: the most resident memory at any time, model loading included;
- **final**: the resident set at the end of the last step;
- **growth per 100 steps**, after the warm-up steps, as a share of the peak (the target: under
  5%), the larger of two: the resident set between steps (its least-squares slope), and the
  peaks within steps (the most of the second half of the steps less the most of the first,
  over half their number: a step's peak depends on its batch's length, the most over many
  steps much less);
- **heap free at the end**: memory glibc's heaps hold freed but not given back to the system
  (a sign of fragmentation when it grows with the steps).

The full run (default) is the spider preset's: batch 8, max length 512, 150 steps of which
20 warm up. ``--quick``: batch 4, max length 128, 50 steps of which 10 warm up. ``--env
NAME=VALUE`` sets a variable in both children (``MALLOC_ARENA_MAX=2``,
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576``, ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=8``)
to try an allocator setting against the same rows; ``--set KEY=VALUE`` changes a setting of
ftui's run (``micro_batch_tokens=100000`` trains whole batches, as before micro-batching).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, print_table, rounded, scratch_home  # noqa: E402
from _training import EMBEDDED, make_run, run_child, versions  # noqa: E402

MiB = 2**20
GiB = 2**30
FLAT_SHARE = 0.05
"""The target (DESIGN.md): growth per 100 steps under 5% of the peak."""
MODES = {"full": dict(batch_size=8, max_length=512, steps=150, warmup=20),
         "quick": dict(batch_size=4, max_length=128, steps=50, warmup=10)}
"""``steps`` counts the warm-up steps."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = dict(MODES["quick" if args.quick else "full"])
    for key in ("batch_size", "max_length", "steps", "warmup"):
        if getattr(args, key) is not None:
            mode[key] = getattr(args, key)
    if not 1 <= mode["warmup"] <= mode["steps"] - 3:
        print("--warmup must be at least 1 and leave 3 or more measured steps", file=sys.stderr)
        return 2
    extra_env = dict(item.split("=", 1) for item in args.env)
    os.environ.update(extra_env)  # the children inherit it
    sides = [args.only] if args.only else ["ours", "baseline"]
    settings = {"batch_size": mode["batch_size"], "max_length": mode["max_length"], "learning_rate": 2e-4}

    with scratch_home(keep=args.keep) as home:
        from ftui.backends.local.models import resolve_model

        model_path = resolve_model(EMBEDDED)  # converts the GGUF once into the model cache
        results = {}
        for side in sides:
            run_dir = make_run("synthetic", EMBEDDED, settings, mode["steps"], mode["max_length"], home, seed=0,
                               more=args.settings if side == "ours" else ())
            results[side] = run_child(side, {"run_dir": str(run_dir), "model_path": model_path, "device": "cpu",
                                             "warmup": mode["warmup"], "memory": True}, home)
    figures = {side: summarize(result, warmup=mode["warmup"]) for side, result in results.items()}
    line: dict[str, Any] = {
        "benchmark": "memory", "quick": args.quick, "model": EMBEDDED, "device": "cpu", **mode,
        "env": extra_env, "settings": args.settings, "flat_share": FLAT_SHARE, **{side: figures[side] for side in sides},
        "versions": versions(), "machine": machine(),
    }
    report(line, sides)
    emit(line)
    return 1 if any(f.get("error") for f in figures.values()) else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="batch 4, max length 128, 50 steps: a few minutes on 2 cores")
    p.add_argument("--steps", type=int, help="optimizer steps per side, warm-up included")
    p.add_argument("--warmup", type=int, help="steps before growth is measured")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-length", type=int, help="the longest row, in tokens (the shortest is half)")
    p.add_argument("--only", choices=("ours", "baseline"), help="run one side only")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="set in both training processes' environment (an allocator setting to try)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="a setting of ftui's run, as ftui train --set takes it (micro_batch_tokens=4096)")
    p.add_argument("--keep", action="store_true", help="keep the scratch FTUI_HOME (runs, logs) for inspection")
    args = p.parse_args(argv)
    bad = [item for item in args.env if "=" not in item or not item.split("=", 1)[0]]
    if bad:
        p.error(f"--env takes NAME=VALUE, not {bad[0]!r}")
    return args


def slope(ys: Sequence[float]) -> float:
    """Least-squares change of ``ys`` per step (one value per step)."""
    n = len(ys)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(ys) / n
    return sum((x - mean_x) * (y - mean_y) for x, y in enumerate(ys)) / sum((x - mean_x) ** 2 for x in range(n))


def drift_of_peaks(peaks: Sequence[float]) -> float:
    """Change per step of the most of ``peaks``: that of their second half less that of their
    first, over half their number."""
    half = len(peaks) // 2
    return (max(peaks[-half:]) - max(peaks[:half])) / (len(peaks) - half) if half else 0.0


def summarize(result: dict[str, Any], *, warmup: int) -> dict[str, Any]:
    """One side's figures from its child's result (``memory``: ``_training.memory_mark`` per step)."""
    problem = result.get("error") or result.get("skipped")
    if problem:
        return {"error" if result.get("error") else "skipped": problem}
    marks = result["memory"]
    rss = [m[0] for m in marks]
    peaks = [max(m[0], m[1] or 0) for m in marks]
    measured = peaks[warmup:]
    peak = max([result.get("before_peak_rss") or 0, *peaks])
    between, within = slope(rss[warmup:]) * 100, drift_of_peaks(measured) * 100
    growth = max(between, within)
    heap = [m[2:] for m in marks]
    return {
        "peak_rss_bytes": peak,
        "final_rss_bytes": rss[-1],
        "warm_rss_bytes": rss[warmup - 1],
        "growth_per_100_steps_bytes": round(growth),
        "growth_share": rounded(growth / peak, 4),
        "flat": growth / peak < FLAT_SHARE,
        "rss_growth_per_100_steps_bytes": round(between),
        "peak_growth_per_100_steps_bytes": round(within),
        "heap_in_use_bytes": heap[-1][0],
        "heap_free_bytes": heap[-1][1],
        "heap_mapped_bytes": heap[-1][2],
        "heap_free_after_warmup_bytes": heap[warmup - 1][1],
        "step_peaks_mib": [round(p / MiB) for p in peaks],
        "tokens_per_s": rounded(result["tokens"] / result["seconds"], 1),
        "s_per_step": rounded(result["seconds"] / result["steps"], 3),
        # Less sensitive to other processes than the wall time; counts the page faults of fresh memory too.
        "tokens_per_cpu_s": rounded(result["tokens"] / result["cpu_seconds"], 1) if result.get("cpu_seconds") else None,
        "final_loss": result.get("final_loss"),
        "precision": result.get("precision"),
        "wall_s": result.get("wall_s"),
    }


def report(line: dict[str, Any], sides: Sequence[str]) -> None:
    print(f"\nresident memory: {line['model']} on the CPU ({line['machine']['cpu']}, {line['machine']['cpu_count']} "
          f"cores); batch {line['batch_size']}, rows of {line['max_length'] // 2}-{line['max_length']} tokens, "
          f"{line['steps']} steps of which {line['warmup']} warm up"
          + (f"; env {' '.join(f'{k}={v}' for k, v in line['env'].items())}" if line["env"] else "") + "\n")

    def gib(n: int | None) -> str | None:
        return None if n is None else f"{n / GiB:.2f} GiB"

    rows = []
    for side in sides:
        f = line[side]
        label = {"ours": "ftui", "baseline": "TRL SFTTrainer defaults"}[side]
        if "peak_rss_bytes" not in f:
            rows.append([label, *["-"] * 7])
            continue
        rows.append([label, gib(f["peak_rss_bytes"]), gib(f["warm_rss_bytes"]), gib(f["final_rss_bytes"]),
                     f"{f['growth_per_100_steps_bytes'] / MiB:+.0f} MiB", f"{100 * f['growth_share']:.1f}%",
                     gib(f["heap_free_bytes"]), f["s_per_step"]])
    print_table(["side", "peak", "after warm-up", "final", "growth/100 steps", "of peak", "heap free at end",
                 "s/step"], rows)
    for side in sides:
        f = line[side]
        if "step_peaks_mib" in f:
            every = max(len(f["step_peaks_mib"]) // 15, 1)
            print(f"\n{side}: peak of every {every}th step (MiB): "
                  + " ".join(str(p) for p in f["step_peaks_mib"][every - 1::every]))
        problem = f.get("error") or f.get("skipped")
        if problem:
            print(f"\n{side}: {problem}")
    print()


if __name__ == "__main__":
    sys.exit(main())
