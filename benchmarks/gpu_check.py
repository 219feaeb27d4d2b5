#!/usr/bin/env python
"""GPU check: ftui's local training methods on a Llama 3.2 1B shape, one JSON line, under 8 minutes.

    benchmarks/gpu_check.sh                  # one H100 or H200 (the shell script adds a time limit)
    benchmarks/gpu_check.sh --cpu-smoke      # the same code, a tiny Llama on the CPU, about a minute

The model is Llama 3.2 1B's published shape (hidden 2048, intermediate 8192, 16 layers, 32 heads,
8 key/value heads, vocabulary 128256, tied embeddings, rope theta 500000; 1.24 B parameters)
made by transformers from a ``LlamaConfig`` with random weights and saved once to a scratch
folder: nothing comes from the hub. Its tokenizer is made here too (``word_tokenizer`` in
``_training.py``: a token per word), and the examples are train_throughput.py's synthetic ones:
prompt and answer of common words, a quarter answer, lengths spread over [512, 1024] tokens.

Each configuration trains through ``ftui.backends.local.train.train_run``, exactly as the runner
calls it, in its own process (so each peak memory is its own), for ``--warmup`` steps and then
``--steps`` measured ones:

- ``lora_bf16``: ``method=lora`` (r 8, alpha 16, on q, k, v, o), bf16;
- ``qlora_4bit``: ``method=lora, quantization=4bit`` (bitsandbytes NF4 base, bf16 compute);
- ``full``: ``method=full``, every weight trains, bf16 autocast;
- ``trl_lora``: TRL's ``SFTTrainer`` with its defaults and the same LoRA on the same examples
  (train_throughput.py's baseline); ``ratio`` is lora_bf16's tokens/s over this one's.

Figures, per configuration:

- ``tokens_per_s``: non-padding tokens fed to the model per wall-clock second over the measured
  steps (data loading, optimizer and ftui's event writing included);
- ``peak_memory_bytes``: ``torch.cuda.max_memory_allocated()`` from the start of training, the
  weights loaded before it included (on a CPU: the process's peak resident set);
- ``mfu``: model FLOPs per second over the GPU's dense bf16 peak. Model FLOPs per trained token:
  2 per matmul weight for the forward, 2 for the backward to its input, and 2 for its weight
  gradient only where the weight trains: 6N for ``full``, 4N + 6 x adapter parameters for LoRA
  and QLoRA (their frozen base needs no weight gradient). N is every Linear weight, the output
  layer included and counted at every position (ftui computes it only where there is a label:
  the model's FLOPs, not the hardware's); embeddings, norms and the 4-bit dequantisation are
  not counted. Causal attention is included: 6 x layers x 2048 x sequence length per token
  (QK^T and the weighted sum over half the square, backward twice the forward). The peak for
  the H100 SXM and the H200 is 989.4 TFLOP/s (NVIDIA's datasheets: BF16 1,979 TFLOPS "with
  sparsity", dense is half); ``--peak-tflops`` for a GPU not in ftui's table (``ftui.core.mfu.GPU_PEAK_TFLOPS``).

Missing pieces make nulls, not a crash: without trl the TRL figures and the ratio are null,
without bitsandbytes (or on the CPU) QLoRA's, each with the reason under ``skipped``; a
configuration that fails or runs out of time has its reason under ``error``.

The time budget, estimated (this script has not yet run on a GPU): on an H100/H200 a
configuration costs a process start with the torch, transformers and peft imports (~15 s),
loading the 2.5 GB checkpoint (~5 s), encoding 352 examples (~2 s), 43 steps of 8 x <= 1024
tokens at ~0.1 s (LoRA, full) to ~0.3 s (QLoRA; TRL, which recomputes activations) each, and
saving what trained (full: the whole model, 5 GB in float32, ~10 s): about a minute. With
the model's build (random init on the GPU, a 2.5 GB write: ~30 s), about 4-5 minutes in all.
The measured steps are the knob: 40 keep the figures steady to a few percent, and each
doubling costs at most ~15 s per configuration. Two guards keep the whole under 8 minutes
when a start is slow: each process gets at most ``--config-timeout`` seconds (150) and what is
left of ``--budget-s`` (450), after which it is stopped and its figures are null with the
reason; the shell script stops everything at 480 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, print_table, rounded, scratch_home  # noqa: E402
from _training import ARCHS, make_run, peak_tflops, run_child, versions  # noqa: E402


@dataclass(frozen=True)
class Mode:
    """What to train on and how long: the GPU check, or its CPU smoke run."""

    arch: str
    device: str
    batch_size: int
    seq_len: int
    """The longest synthetic example, in tokens; also max_length."""
    warmup: int
    steps: int


GPU = Mode(arch="llama-1b", device="cuda", batch_size=8, seq_len=1024, warmup=3, steps=40)
CPU_SMOKE = Mode(arch="llama-tiny", device="cpu", batch_size=2, seq_len=64, warmup=1, steps=2)


@dataclass(frozen=True)
class Config:
    name: str
    method: str
    quantization: str


CONFIGS = (
    Config("lora_bf16", "lora", "none"),
    Config("full", "full", "none"),
    Config("qlora_4bit", "lora", "4bit"),
)
"""ftui's configurations; ``trl_lora`` trains with lora_bf16's settings."""
ORDER = ("lora_bf16", "trl_lora", "full", "qlora_4bit")
"""The order they run in: the ratio's two sides first, the likeliest to be skipped last."""

FLOPS_PER_TOKEN = ("full: 6N; lora and qlora: 4N + 6 x adapter params (no weight gradient for frozen weights); "
                   "N = Linear weights incl. the output layer at every position; embeddings, norms, "
                   "dequantisation not counted; plus causal attention 6 x layers x width x seq_len")

SMOKE_NOTE = "a check that the code runs (a few steps of a tiny model on shared CPUs), not a measurement"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch  # heavy: device detection

    from ftui.core.config import METHOD_LEARNING_RATES, LocalSettings

    mode = CPU_SMOKE if args.cpu_smoke else GPU
    if mode.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA GPU here; --cpu-smoke runs the same code on a tiny model on the CPU",
              file=sys.stderr)
        return 2
    warmup = args.warmup if args.warmup is not None else mode.warmup
    steps = args.steps or mode.steps
    if warmup < 1:
        print("--warmup must be >= 1 (the first step includes one-off work)", file=sys.stderr)
        return 2
    began = time.monotonic()
    deadline = began + args.budget_s
    gpu_name = torch.cuda.get_device_name(0) if mode.device == "cuda" else None
    peak, peak_source = peak_tflops(gpu_name, args.peak_tflops)

    results: dict[str, dict[str, Any]] = {}
    with scratch_home(keep=args.keep) as home:
        folder = home / f"model-{mode.arch}"
        built = run_child("build", {"arch": mode.arch, "device": mode.device, "folder": str(folder),
                                    "tokenizer": "words"}, home, timeout=time_left(deadline, args.config_timeout))
        for name in ORDER:
            why_not = "the model could not be built" if "error" in built else skip_reason(name, mode)
            if why_not:
                results[name] = {"skipped": why_not}
                continue
            timeout = time_left(deadline, args.config_timeout)
            if timeout < 30:
                results[name] = {"skipped": f"the time budget (--budget-s {args.budget_s:.0f}) ran out before it"}
                continue
            config = next((c for c in CONFIGS if c.name == name), CONFIGS[0])  # trl_lora: lora_bf16's
            # The method's own learning rate: beside the point for throughput, but what one would use.
            settings = {"batch_size": mode.batch_size, "max_length": mode.seq_len,
                        "learning_rate": METHOD_LEARNING_RATES.get(config.method, LocalSettings().learning_rate)}
            precision = "bf16" if mode.device == "cuda" else "auto"  # auto: what a CPU user gets
            run_dir = make_run("synthetic", str(folder), settings, warmup + steps, mode.seq_len, home, seed=0,
                               more=[f"method={config.method}", f"quantization={config.quantization}",
                                     f"precision={precision}"])
            side = "baseline" if name == "trl_lora" else "ours"
            label = "TRL SFTTrainer (defaults), LoRA" if side == "baseline" else f"ftui, {name}"
            results[name] = run_child(side, {"run_dir": str(run_dir), "model_path": str(folder),
                                             "device": mode.device, "warmup": warmup},
                                      home, label=label, timeout=timeout)
    figures = {
        "benchmark": "gpu_check", "mode": "cpu-smoke" if args.cpu_smoke else "gpu", "device": mode.device,
        "gpu": gpu_name, "note": SMOKE_NOTE if args.cpu_smoke else None,
        "model": {"arch": mode.arch, "params": built.get("params"), "weights": "random", **ARCHS[mode.arch]},
        "model_error": built.get("error"),
        "data": {"examples": "synthetic", "seq_len": mode.seq_len, "batch_size": mode.batch_size,
                 "max_length": mode.seq_len},
        "lora": lora_settings(), "warmup": warmup, "steps": steps,
        **summarize(results, peak=peak),
        "peak_tflops": peak, "peak_tflops_source": peak_source, "flops_per_token": FLOPS_PER_TOKEN,
        "budget_s": args.budget_s, "wall_s": round(time.monotonic() - began, 1),
        "versions": versions(), "machine": machine(),
    }
    report(figures)
    emit(figures)
    failed = figures["model_error"] or any(c["error"] for c in (*figures["configs"].values(), figures["trl_lora"]))
    return 1 if failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-smoke", action="store_true",
                   help="the same code on a tiny Llama on the CPU, in about a minute (QLoRA skipped)")
    p.add_argument("--steps", type=int, help=f"measured steps per configuration (default {GPU.steps}; "
                                              f"{CPU_SMOKE.steps} with --cpu-smoke)")
    p.add_argument("--warmup", type=int, help=f"steps before the measurement (default {GPU.warmup}; "
                                               f"{CPU_SMOKE.warmup} with --cpu-smoke)")
    p.add_argument("--budget-s", type=float, default=450.0,
                   help="seconds for the whole check; a configuration that would run past it is stopped")
    p.add_argument("--config-timeout", type=float, default=150.0, help="seconds at most per configuration")
    p.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, for MFU on a GPU not in the table")
    p.add_argument("--keep", action="store_true", help="keep the scratch FTUI_HOME (model, runs, logs)")
    return p.parse_args(argv)


def lora_settings() -> dict[str, Any]:
    """ftui's LoRA defaults, which both LoRA sides train (the runs set no LoRA option)."""
    from ftui.core.config import LocalSettings

    d = LocalSettings()
    return {"r": d.lora_r, "alpha": d.lora_alpha, "dropout": d.lora_dropout, "target_modules": list(d.target_modules)}


def time_left(deadline: float, cap: float) -> float:
    return max(0.0, min(cap, deadline - time.monotonic() - 5))  # 5 s to write the report


def skip_reason(name: str, mode: Mode) -> str | None:
    """Why a configuration cannot run here, before starting a process for it."""
    if name == "trl_lora" and importlib.util.find_spec("trl") is None:
        return "trl is not installed here (pip install trl): no TRL figures, no ratio"
    if name == "qlora_4bit":
        if mode.device != "cuda":
            return "4-bit quantization needs a CUDA GPU (bitsandbytes); not run on the CPU"
        if importlib.util.find_spec("bitsandbytes") is None:
            return "bitsandbytes is not installed here (pip install bitsandbytes): no QLoRA figures"
    return None


def summarize(results: dict[str, dict[str, Any]], *, peak: float | None) -> dict[str, Any]:
    """The same keys for every configuration, null figures where it did not run."""
    def figures_of(r: dict[str, Any]) -> dict[str, Any]:
        measured = "tokens" in r and not (r.get("error") or r.get("skipped"))
        shape = r.get("shape", {})
        out: dict[str, Any] = {
            "tokens_per_s": rounded(r["tokens"] / r["seconds"], 1) if measured else None,
            "mfu": rounded(r["model_flops"] / r["seconds"] / (peak * 1e12), 4) if measured and peak else None,
            "model_tflops_per_s": rounded(r["model_flops"] / r["seconds"] / 1e12, 4) if measured else None,
            "peak_memory_bytes": r["peak_memory_bytes"] if measured else None,
            "s_per_step": rounded(r["seconds"] / r["steps"], 3) if measured else None,
            "tokens": r["tokens"] if measured else None,
            "padding_share": rounded(1 - r["tokens"] / r["padded_tokens"], 3) if measured else None,
            "trainable_params": shape.get("trainable_params"),
            "precision": r.get("precision"),
            "final_loss": rounded(r.get("final_loss"), 4),
            "wall_s": r.get("wall_s"),
            "skipped": r.get("skipped"),
            "error": r.get("error"),
        }
        return out

    configs = {}
    for c in CONFIGS:
        configs[c.name] = {"method": c.method, "quantization": c.quantization, **figures_of(results[c.name])}
    trl = figures_of(results["trl_lora"])
    trl["gradient_checkpointing"] = results["trl_lora"].get("gradient_checkpointing")
    ours, base = configs["lora_bf16"]["tokens_per_s"], trl["tokens_per_s"]
    why = None
    if ours is None or base is None:
        lora, side = (configs["lora_bf16"], "ftui lora_bf16") if ours is None else (trl, "TRL")
        why = f"{side}: {lora['skipped'] or lora['error']}"
    return {
        "configs": configs,
        "trl_lora": trl,
        "ratio": rounded(ours / base, 3) if ours and base else None,
        "ratio_of": "tokens/s, ftui lora_bf16 over TRL SFTTrainer defaults with the same LoRA",
        "ratio_reason": why,
    }


def report(f: dict[str, Any]) -> None:
    where = f["gpu"] or f"{f['machine']['cpu']}, {f['machine']['cpu_count']} cores"
    params = f"{f['model']['params'] / 1e9:.2f} B" if f["model"]["params"] else "?"
    print(f"\ngpu check ({f['mode']}): {f['model']['arch']} ({params} parameters, random weights) on "
          f"{f['device']} ({where}); batch {f['data']['batch_size']} x <= {f['data']['max_length']} tokens; "
          f"{f['steps']} measured steps after {f['warmup']} warm-up; {f['wall_s']:.0f} s in all\n")
    if f["note"]:
        print(f"({f['note']})\n")
    rows = []
    entries = [*f["configs"].items(), ("trl_lora", f["trl_lora"])]
    for name, c in entries:
        mem = c["peak_memory_bytes"]
        rows.append([name, c["tokens_per_s"], c["s_per_step"], c["model_tflops_per_s"],
                     None if c["mfu"] is None else f"{100 * c['mfu']:.1f}%",
                     None if mem is None else f"{mem / 2**30:.2f} GiB", c["trainable_params"], c["precision"]])
    print_table(["config", "tokens/s", "s/step", "model TFLOP/s", "MFU", "peak memory", "trained params",
                 "precision"], rows)
    for name, c in entries:
        if c["skipped"] or c["error"]:
            print(f"\n{name}: {'skipped: ' + c['skipped'] if c['skipped'] else c['error']}")
    if f["model_error"]:
        print(f"\nmodel: {f['model_error']}")
    ratio = f"{f['ratio']:.2f}x tokens per second" if f["ratio"] is not None else f"- ({f['ratio_reason']})"
    print(f"\nratio (ftui lora_bf16 / TRL defaults): {ratio}")
    if f["device"] == "cuda" and f["peak_tflops"] is None:
        print(f"\nMFU: {f['peak_tflops_source']}")
    print()


if __name__ == "__main__":
    sys.exit(main())
