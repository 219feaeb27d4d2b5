#!/usr/bin/env python
"""Training throughput: ftui's local backend against TRL's ``SFTTrainer`` with its default settings.

    .venv/bin/python benchmarks/train_throughput.py --quick      # the embedded model, on this CPU
    python benchmarks/train_throughput.py --arch llama-1b        # CUDA: a random-weight Llama 3.2 1B
    python benchmarks/train_throughput.py --arch llama-8b        # CUDA: a random-weight Llama 3.1 8B

Both sides train the same model on the same examples with the same LoRA adapter (r, alpha,
dropout, target modules), batch size, learning rate, max length and number of steps, each in
its own child process of ``_training.py`` (so peak memory is its own), one after the other; ``--rounds 2`` runs
them twice in alternating order. The figures:

- **trained tokens per second**: the non-padding tokens of the batches fed to the model (the
  sum of the attention mask, counted by a forward pre-hook on the trained model, the same
  code for both sides) over the wall time from the end of the warm-up steps to the end of
  the last step. Everything the trainer does in between counts: data loading, the optimizer,
  logging, ftui's event writing.
- **peak memory**: on CUDA ``torch.cuda.max_memory_allocated()`` from the start of training;
  on a CPU the child process's peak resident set (model loading included).
- **GEMM ceiling and gemm_fraction** (CPU): after the training, a child process times plain bf16
  matmuls of the model's Linear shapes (every projection and the output layer, forward
  ``[tokens x in] @ [in x out]`` and backward to the input, at the row count of ftui's batches,
  with torch's default threads as the training children; ``_training.py``, ``gemm_ceiling``):
  the model FLOPs rate a CPU could reach if training were nothing but its matmuls.
  ``gemm_fraction`` is ftui's model FLOPs rate over that ceiling (``baseline_gemm_fraction`` TRL's).
- **model FLOPs utilisation** (CUDA): model FLOPs per token = 4 x matmul parameters (forward,
  and the backward to the inputs; the frozen weights need no weight gradient) + 6 x adapter
  parameters + causal attention 6 x layers x attention width x sequence length (``_training.py``,
  ``Meter.result``, which counts 6 per matmul weight for a model that trains all); divided by
  the time and the GPU's dense bf16 peak (table below). The same formula for both sides, so
  the MFU ratio is the throughput ratio. The model FLOPs per second are shown on a CPU too.

**The baseline** is what a user writes with TRL (1.16 here):

    SFTTrainer(model=PATH, args=SFTConfig(output_dir=..., max_steps=N, per_device_train_batch_size=B,
               learning_rate=LR, max_length=L), train_dataset=<prompt-completion conversations>,
               peft_config=LoraConfig(r=..., lora_alpha=..., lora_dropout=..., target_modules=[...]))

so it runs TRL's defaults (``trl/trainer/sft_config.py`` and ``base_config.py``):
gradient_checkpointing=True, bf16=True (autocast over the float32 weights that
``create_model_from_path`` loads by default), padding_free=False and packing=False (each batch
padded to its longest example), completion_only_loss=None (loss on the completion only, for a
prompt-completion dataset, as ftui), assistant_only_loss=False, a random sampler (no length
grouping), logging every 10 steps, transformers' default fused AdamW, and TRL's chunked LM
head over every position plus its entropy and token-accuracy metrics on each step.

On a GPU box without TRL the baseline is skipped with a message; ftui's side still runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, print_table, rounded, scratch_home  # noqa: E402
from _training import ARCHS, EMBEDDED, make_run, peak_tflops, run_child, versions  # noqa: E402

ARCH_BATCH = {"llama-1b": 8, "llama-8b": 4, "llama-tiny": 8}
"""Default batch sizes: the 8B's activations for 8 x 1024 tokens would not fit next to its weights on 80 GB."""


LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
"""The adapter both sides train (ftui's and TRL's read it from the run's settings)."""
LORA_SETTINGS = ["method=lora", f"lora_r={LORA['r']}", f"lora_alpha={LORA['alpha']}",
                 f"lora_dropout={LORA['dropout']}", "target_modules=" + ",".join(LORA["target_modules"])]


# -- parent ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch  # heavy: device detection

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch sees no CUDA GPU here", file=sys.stderr)
        return 2
    arch = args.arch or (EMBEDDED if device == "cpu" else "llama-1b")
    data = args.data or ("demo" if arch == EMBEDDED else "synthetic")
    quick = args.quick
    steps = args.steps or ((6 if quick else 20) if device == "cpu" else (10 if quick else 30))
    warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    if warmup < 1:
        print("--warmup must be >= 1 (the first step includes one-off work)", file=sys.stderr)
        return 2
    total = warmup + steps
    sides = [args.only] if args.only else ["ours", "baseline"]
    gpu_name = torch.cuda.get_device_name(0) if device == "cuda" else None
    peak, peak_source = peak_tflops(gpu_name, args.peak_tflops)

    with scratch_home(keep=args.keep) as home:
        model_path, model_ref = prepare_model(arch, device, home)
        settings = run_settings(args, arch, data, total)
        results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for r in range(args.rounds):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                run_dir = make_run(data, model_ref, settings, total, args.seq_len, home, seed=r, more=LORA_SETTINGS)
                results[side].append(run_child(side, {
                    "run_dir": str(run_dir), "model_path": model_path, "device": device, "warmup": warmup,
                }, home))
        gemm = gemm_child(results, model_path, home) if device == "cpu" else None
        figures = summarize(results, peak=peak, gemm=gemm)
    figures.update(
        benchmark="train_throughput", device=device, gpu=gpu_name, arch=arch, data=data,
        batch_size=settings["batch_size"], max_length=settings["max_length"], learning_rate=settings["learning_rate"],
        lora=LORA,
        steps=steps, warmup=warmup, rounds=args.rounds, quick=quick, peak_tflops=peak,
        peak_tflops_source=peak_source, versions=versions(), machine=machine(),
    )
    report(figures)
    emit(figures)
    failed = [side for side in sides if figures.get(f"{side}_error")]
    return 1 if failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few steps: a few minutes on 2 CPU cores")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--arch", choices=(EMBEDDED, *ARCHS),
                   help=f"model: {EMBEDDED} (the embedded model; default on a CPU) or a random-weight "
                        "architecture (llama-1b is the default on CUDA)")
    p.add_argument("--data", choices=("demo", "synthetic"),
                   help="the demo preset's training split (default for the embedded model) or synthetic "
                        "examples of --seq-len tokens (default for the random-weight architectures)")
    p.add_argument("--seq-len", type=int, default=1024, help="synthetic examples: the longest, in tokens")
    p.add_argument("--steps", type=int, help="measured optimizer steps per side")
    p.add_argument("--warmup", type=int, help="steps before the measurement starts (default 1 with --quick, else 2)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument("--rounds", type=int, default=1, help="train each side this many times, alternating the order")
    p.add_argument("--only", choices=("ours", "baseline"), help="run one side only")
    p.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, for MFU on a GPU not in the table")
    p.add_argument("--keep", action="store_true", help="keep the scratch FTUI_HOME (runs, logs) for inspection")
    return p.parse_args(argv)


def prepare_model(arch: str, device: str, home: Path) -> tuple[str, str]:
    """(a folder from_pretrained loads, the model as run.json names it)."""
    if arch == EMBEDDED:
        from ftui.backends.local.models import resolve_model

        return resolve_model(EMBEDDED), EMBEDDED  # converts the GGUF once into the model cache
    folder = home / f"model-{arch}"
    built = run_child("build", {"arch": arch, "device": device, "folder": str(folder)}, home)
    if "error" in built:
        raise SystemExit(built["error"])
    return str(folder), str(folder)


def run_settings(args: argparse.Namespace, arch: str, data: str, total: int) -> dict[str, Any]:
    if data == "demo":
        from ftui.core.config import METHOD_LEARNING_RATES
        from ftui.core.presets import load_preset

        # The demo preset trains the whole model (method=full); both sides here train LoRA
        # (LORA below), at the rate ftui gives LoRA.
        local = load_preset("demo").settings_for("local")
        batch, max_length, lr = local.batch_size, local.max_length, METHOD_LEARNING_RATES["lora"]
    else:
        batch, max_length, lr = ARCH_BATCH.get(arch, 8), args.seq_len, 2e-4
    return {"batch_size": args.batch_size or batch, "max_length": args.max_length or max_length,
            "learning_rate": lr}


def gemm_child(results: dict[str, list[dict[str, Any]]], model_path: str, home: Path) -> dict[str, Any] | None:
    """The bf16 GEMM ceiling of the model's matmul shapes, at the row count of a training batch
    (padded tokens per step, ftui's side when it ran), measured after the training."""
    done = [r for side in ("ours", "baseline") for r in results.get(side, []) if "padded_tokens" in r]
    if not done:
        return None
    tokens = round(done[0]["padded_tokens"] / done[0]["steps"])
    return run_child("gemm", {"model_path": model_path, "tokens": tokens}, home)


def summarize(results: dict[str, list[dict[str, Any]]], *, peak: float | None,
              gemm: dict[str, Any] | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    ceiling = gemm.get("tflops_per_s") if gemm else None
    if gemm:
        figures.update(gemm_ceiling_tflops_per_s=rounded(ceiling, 4), gemm_tokens=gemm.get("tokens"),
                       gemm_threads=gemm.get("threads"), gemm_error=gemm.get("error"))
    for side, rounds in results.items():
        errors = [r.get("error") or r.get("skipped") for r in rounds if r.get("error") or r.get("skipped")]
        if errors:
            key = "skipped" if all(r.get("skipped") for r in rounds) else "error"
            figures[f"{side}_{key}"] = errors[0]
            figures[f"{side}_tokens_per_s"] = None
            continue
        tokens = sum(r["tokens"] for r in rounds)
        seconds = sum(r["seconds"] for r in rounds)
        flops = sum(r["model_flops"] for r in rounds)
        padded = sum(r["padded_tokens"] for r in rounds)
        figures.update({
            f"{side}_tokens_per_s": rounded(tokens / seconds, 1),
            f"{side}_s_per_step": rounded(seconds / sum(r["steps"] for r in rounds), 3),
            # Less sensitive to other processes on a shared machine than the wall time (not immune).
            f"{side}_tokens_per_cpu_s": rounded(tokens / sum(r["cpu_seconds"] for r in rounds), 1),
            f"{side}_tokens": tokens,
            f"{side}_padding_share": rounded(1 - tokens / padded, 3) if padded else None,
            f"{side}_peak_memory_bytes": max(r["peak_memory_bytes"] for r in rounds),
            f"{side}_model_tflops_per_s": rounded(flops / seconds / 1e12, 4),
            f"{side}_mfu": rounded(flops / seconds / (peak * 1e12), 4) if peak else None,
            f"{side}_gemm_fraction": rounded(flops / seconds / (ceiling * 1e12), 4) if ceiling else None,
            f"{side}_precision": rounds[0].get("precision"),
            f"{side}_final_loss": rounds[-1].get("final_loss"),
            f"{side}_per_round_tokens_per_s": [rounded(r["tokens"] / r["seconds"], 1) for r in rounds],
        })
    ours, base = figures.get("ours_tokens_per_s"), figures.get("baseline_tokens_per_s")
    figures["ratio"] = rounded(ours / base, 3) if ours and base else None
    ours_cpu, base_cpu = figures.get("ours_tokens_per_cpu_s"), figures.get("baseline_tokens_per_cpu_s")
    figures["cpu_time_ratio"] = rounded(ours_cpu / base_cpu, 3) if ours_cpu and base_cpu else None
    figures["gemm_fraction"] = figures.get("ours_gemm_fraction")  # the target's figure, on a CPU
    if "ours" in results and results["ours"] and "shape" in results["ours"][0]:
        figures["model_shape"] = results["ours"][0]["shape"]
    return figures


def report(f: dict[str, Any]) -> None:
    where = f["gpu"] or f"{f['machine']['cpu']}, {f['machine']['cpu_count']} cores"
    print(f"\ntrain throughput: {f['arch']} on {f['device']} ({where}); {f['data']} data, batch {f['batch_size']}, "
          f"max_length {f['max_length']}, LoRA r=8 on q,k,v,o; {f['steps']} measured steps after "
          f"{f['warmup']} warm-up, {f['rounds']} round(s)\n")
    # On a CPU the model FLOPs rate is set against the bf16 GEMM ceiling measured here; on a GPU
    # against the chip's peak (MFU).
    cpu = f["device"] == "cpu"
    share, share_key = ("of GEMM ceiling", "gemm_fraction") if cpu else ("MFU", "mfu")
    rows = []
    for side, label in (("ours", "ftui"), ("baseline", "TRL SFTTrainer defaults")):
        if f"{side}_tokens_per_s" not in f:
            continue
        problem = f.get(f"{side}_error") or f.get(f"{side}_skipped")
        if problem:
            rows.append([label, "-", "-", "-", "-", "-", "-", "-"])
            continue
        mem = f[f"{side}_peak_memory_bytes"]
        fraction = f.get(f"{side}_{share_key}")
        rows.append([label, f[f"{side}_tokens_per_s"], f[f"{side}_s_per_step"], f[f"{side}_tokens"],
                     f"{100 * f[f'{side}_padding_share']:.1f}%" if f[f"{side}_padding_share"] is not None else None,
                     f"{mem / 2**30:.2f} GiB", f[f"{side}_model_tflops_per_s"],
                     f"{100 * fraction:.1f}%" if fraction is not None else None])
    if cpu and f.get("gemm_ceiling_tflops_per_s"):
        rows.append([f"bf16 GEMM ceiling ({f['gemm_tokens']} rows, {f['gemm_threads']} threads)", "-", "-", "-",
                     "-", "-", f["gemm_ceiling_tflops_per_s"], "100.0%"])
    print_table(["side", "tokens/s", "s/step", "tokens", "padding", "peak memory", "model TFLOP/s", share], rows)
    if cpu and f.get("gemm_error"):
        print(f"\nGEMM ceiling: {f['gemm_error']}")
    for side in ("ours", "baseline"):
        if f.get(f"{side}_skipped"):
            print(f"\n{side}: skipped: {f[f'{side}_skipped']}")
        if f.get(f"{side}_error"):
            print(f"\n{side}: {f[f'{side}_error']}")
    if f["ratio"] is not None:
        print(f"\nratio (ftui / TRL defaults): {f['ratio']:.2f}x trained tokens per second")
    if f.get("gemm_fraction") is not None:
        print(f"gemm_fraction (ftui's model FLOPs rate / the bf16 GEMM ceiling): {f['gemm_fraction']:.3f}")
    if f["device"] == "cuda" and f["peak_tflops"] is None:
        print(f"\nMFU: {f['peak_tflops_source']}")
    print()


if __name__ == "__main__":
    sys.exit(main())
