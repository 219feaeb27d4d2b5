#!/usr/bin/env python
"""Training throughput: ftui's local backend against TRL's ``SFTTrainer`` with its default settings.

    .venv/bin/python benchmarks/train_throughput.py --quick      # the embedded model, on this CPU
    python benchmarks/train_throughput.py --arch llama-1b        # CUDA: a random-weight Llama 3.2 1B
    python benchmarks/train_throughput.py --arch llama-8b        # CUDA: a random-weight Llama 3.1 8B

Both sides train the same model on the same examples with the same LoRA adapter (r, alpha,
dropout, target modules), batch size, learning rate, max length and number of steps, each in
its own child process (so peak memory is its own), one after the other; ``--rounds 2`` runs
them twice in alternating order. The figures:

- **trained tokens per second**: the non-padding tokens of the batches fed to the model (the
  sum of the attention mask, counted by a forward pre-hook on the trained model, the same
  code for both sides) over the wall time from the end of the warm-up steps to the end of
  the last step. Everything the trainer does in between counts: data loading, the optimizer,
  logging, ftui's event writing.
- **peak memory**: on CUDA ``torch.cuda.max_memory_allocated()`` from the start of training;
  on a CPU the child process's peak resident set (model loading included).
- **model FLOPs utilisation** (CUDA): model FLOPs per token = 4 x matmul parameters (forward,
  and the backward to the inputs; the frozen weights need no weight gradient) + 6 x adapter
  parameters + causal attention 6 x layers x attention width x sequence length; divided by
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
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, print_table, rounded, scratch_home, use_source_tree  # noqa: E402

use_source_tree()

EMBEDDED = "smollm2-135m"

ARCHS: dict[str, dict[str, Any]] = {
    # Llama 3.2 1B and Llama 3.1 8B shapes (their config.json on the hub), random weights.
    "llama-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "llama-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
    # A small one, to try the random-weight path on a CPU in seconds.
    "llama-tiny": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True),
}
ARCH_BATCH = {"llama-1b": 8, "llama-8b": 4, "llama-tiny": 8}
"""Default batch sizes: the 8B's activations for 8 x 1024 tokens would not fit next to its weights on 80 GB."""

PEAK_BF16_TFLOPS: list[tuple[str, float, str]] = [
    # (regex on torch.cuda.get_device_name(), dense bf16 tensor-core TFLOP/s, source). NVIDIA's
    # datasheets quote bf16 "with sparsity"; dense is half of that.
    (r"H200 NVL", 835.5, "nvidia.com/en-us/data-center/h200: H200 NVL BF16 1,671 TFLOPS with sparsity"),
    (r"H200", 989.4, "nvidia.com/en-us/data-center/h200: H200 SXM BF16 1,979 TFLOPS with sparsity"),
    (r"H100 NVL", 835.5, "nvidia.com/en-us/data-center/h100: H100 NVL BF16 1,671 TFLOPS with sparsity"),
    (r"H100 PCIe", 756.0, "nvidia.com/en-us/data-center/h100: H100 PCIe BF16 1,513 TFLOPS with sparsity"),
    (r"H100", 989.4, "nvidia.com/en-us/data-center/h100: H100 SXM BF16 1,979 TFLOPS with sparsity"),
    (r"A100", 312.0, "nvidia.com/en-us/data-center/a100: A100 BF16 312 TFLOPS (624 with sparsity)"),
    (r"L40S", 362.05, "nvidia.com/en-us/data-center/l40s: L40S BF16 362.05 TFLOPS (733 with sparsity)"),
    (r"\bL4\b", 121.0, "nvidia.com/en-us/data-center/l4: L4 BF16 242 TFLOPS with sparsity"),
    (r"\bA10\b", 125.0, "nvidia.com/en-us/data-center/products/a10-gpu: A10 BF16 125 TFLOPS (250 with sparsity)"),
]

WORDS = (
    "the of and to in is was for on that with as by at from his her they this which have are be one had not "
    "but what all were when we there can an your been has more if will so no out up into time only new some "
    "could these two may first then do any like my now over such our man me even most made after also did "
    "many before must through back years where much way well down should because each just those people how "
    "too little state good very make world still own see men work long get here between both life being under "
    "never day same another know while last might us great old year off come since against go came right used "
    "take three table query select where count order group name value date city price total number region"
).split()


# -- parent ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args.child, json.loads(Path(args.spec).read_text()))
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
                run_dir = make_run(data, model_ref, settings, total, args.seq_len, home, seed=r)
                results[side].append(run_child(side, {
                    "run_dir": str(run_dir), "model_path": model_path, "device": device, "warmup": warmup,
                }, home))
        figures = summarize(results, peak=peak)
    figures.update(
        benchmark="train_throughput", device=device, gpu=gpu_name, arch=arch, data=data,
        batch_size=settings["batch_size"], max_length=settings["max_length"], learning_rate=settings["learning_rate"],
        lora={"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
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
    p.add_argument("--child", choices=("ours", "baseline", "build"), help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def peak_tflops(gpu_name: str | None, override: float | None) -> tuple[float | None, str | None]:
    if override:
        return override, "--peak-tflops"
    if gpu_name is None:
        return None, None
    for pattern, tflops, source in PEAK_BF16_TFLOPS:
        if re.search(pattern, gpu_name):
            return tflops, source
    return None, f"{gpu_name} is not in the table: pass --peak-tflops for MFU"


def prepare_model(arch: str, device: str, home: Path) -> tuple[str, str]:
    """(a folder from_pretrained loads, the model as run.json names it)."""
    if arch == EMBEDDED:
        from ftui.backends.local.models import resolve_model

        return resolve_model(EMBEDDED), EMBEDDED  # converts the GGUF once into the model cache
    folder = home / f"model-{arch}"
    run_child("build", {"arch": arch, "device": device, "folder": str(folder)}, home)
    return str(folder), str(folder)


def run_settings(args: argparse.Namespace, arch: str, data: str, total: int) -> dict[str, Any]:
    if data == "demo":
        from ftui.core.presets import load_preset

        local = load_preset("demo").settings_for("local")
        batch, max_length, lr = local.batch_size, local.max_length, local.learning_rate
    else:
        batch, max_length, lr = ARCH_BATCH.get(arch, 8), args.seq_len, 2e-4
    return {"batch_size": args.batch_size or batch, "max_length": args.max_length or max_length,
            "learning_rate": lr}


def make_run(data: str, model_ref: str, settings: dict[str, Any], total: int, seq_len: int, home: Path,
             *, seed: int) -> Path:
    """A run directory as ``ftui train`` makes it; validation and checkpoints fall after the last step."""
    from ftui.core.request import RunRequest, prepare_run

    overrides = [f"batch_size={settings['batch_size']}", f"max_length={settings['max_length']}",
                 f"learning_rate={settings['learning_rate']}", f"eval_every={total + 1}"]
    if data == "demo":
        req = RunRequest(preset="demo", model=model_ref, max_steps=total, overrides=overrides)
    else:
        path = home / f"synthetic-{seed}.jsonl"
        write_synthetic(path, rows=settings["batch_size"] * (total + 1), seq_len=seq_len, seed=seed)
        req = RunRequest(data=path, task="text", model=model_ref, max_steps=total,
                         overrides=[*overrides, "split.val=0", "split.test=0"])
    return prepare_run(req).dir


def write_synthetic(path: Path, *, rows: int, seq_len: int, seed: int) -> None:
    """Prompt/answer pairs of words (about a token each), lengths spread over [seq_len/2, seq_len]."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(rows):
            words = rng.randint(seq_len // 2, seq_len) - 24  # room for the chat template's tokens
            answer = max(words // 4, 1)
            f.write(json.dumps({"input": " ".join(rng.choices(WORDS, k=words - answer)),
                                "output": " ".join(rng.choices(WORDS, k=answer))}) + "\n")


def run_child(side: str, spec: dict[str, Any], home: Path) -> dict[str, Any]:
    out = home / f"result-{side}-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    spec_path = out.with_suffix(".spec.json")
    spec_path.write_text(json.dumps({**spec, "out": str(out)}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1] / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    label = {"ours": "ftui", "baseline": "TRL SFTTrainer (defaults)", "build": "building the model"}[side]
    print(f"... {label}", flush=True)
    began = time.monotonic()
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.run([sys.executable, __file__, "--child", side, "--spec", str(spec_path)],
                              stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    result = json.loads(out.read_text()) if out.is_file() else {}
    if proc.returncode != 0 or not result:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        result.setdefault("error", f"{label} failed (exit {proc.returncode}); log tail:\n{tail}")
        if side == "build":
            raise SystemExit(result["error"])
    result["wall_s"] = round(time.monotonic() - began, 1)
    return result


def summarize(results: dict[str, list[dict[str, Any]]], *, peak: float | None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
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
            f"{side}_precision": rounds[0].get("precision"),
            f"{side}_final_loss": rounds[-1].get("final_loss"),
            f"{side}_per_round_tokens_per_s": [rounded(r["tokens"] / r["seconds"], 1) for r in rounds],
        })
    ours, base = figures.get("ours_tokens_per_s"), figures.get("baseline_tokens_per_s")
    figures["ratio"] = rounded(ours / base, 3) if ours and base else None
    ours_cpu, base_cpu = figures.get("ours_tokens_per_cpu_s"), figures.get("baseline_tokens_per_cpu_s")
    figures["cpu_time_ratio"] = rounded(ours_cpu / base_cpu, 3) if ours_cpu and base_cpu else None
    if "ours" in results and results["ours"] and "shape" in results["ours"][0]:
        figures["model_shape"] = results["ours"][0]["shape"]
    return figures


def report(f: dict[str, Any]) -> None:
    where = f["gpu"] or f"{f['machine']['cpu']}, {f['machine']['cpu_count']} cores"
    print(f"\ntrain throughput: {f['arch']} on {f['device']} ({where}); {f['data']} data, batch {f['batch_size']}, "
          f"max_length {f['max_length']}, LoRA r=8 on q,k,v,o; {f['steps']} measured steps after "
          f"{f['warmup']} warm-up, {f['rounds']} round(s)\n")
    rows = []
    for side, label in (("ours", "ftui"), ("baseline", "TRL SFTTrainer defaults")):
        if f"{side}_tokens_per_s" not in f:
            continue
        problem = f.get(f"{side}_error") or f.get(f"{side}_skipped")
        if problem:
            rows.append([label, "-", "-", "-", "-", "-", "-", "-"])
            continue
        mem = f[f"{side}_peak_memory_bytes"]
        rows.append([label, f[f"{side}_tokens_per_s"], f[f"{side}_s_per_step"], f[f"{side}_tokens"],
                     f"{100 * f[f'{side}_padding_share']:.1f}%" if f[f"{side}_padding_share"] is not None else None,
                     f"{mem / 2**30:.2f} GiB", f[f"{side}_model_tflops_per_s"],
                     f"{100 * f[f'{side}_mfu']:.1f}%" if f[f"{side}_mfu"] is not None else None])
    print_table(["side", "tokens/s", "s/step", "tokens", "padding", "peak memory", "model TFLOP/s", "MFU"], rows)
    for side in ("ours", "baseline"):
        if f.get(f"{side}_skipped"):
            print(f"\n{side}: skipped: {f[f'{side}_skipped']}")
        if f.get(f"{side}_error"):
            print(f"\n{side}: {f[f'{side}_error']}")
    if f["ratio"] is not None:
        print(f"\nratio (ftui / TRL defaults): {f['ratio']:.2f}x trained tokens per second")
    if f["device"] == "cuda" and f["peak_tflops"] is None:
        print(f"\nMFU: {f['peak_tflops_source']}")
    print()


def versions() -> dict[str, str | None]:
    import importlib.metadata as md

    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "peft", "trl", "accelerate"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


# -- children ------------------------------------------------------------------------------

def child(side: str, spec: dict[str, Any]) -> int:
    if side == "build":
        build_model(spec)
        result: dict[str, Any] = {"folder": spec["folder"]}
    elif side == "ours":
        result = train_ours(spec)
    else:
        result = train_baseline(spec)
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


def build_model(spec: dict[str, Any]) -> None:
    """A Llama of the named shape with random weights, saved in bf16 with the embedded tokenizer."""
    import torch
    import transformers

    from ftui.backends.local.models import load_tokenizer

    tok = load_tokenizer(EMBEDDED)  # its ids fit in any of these vocabularies
    config = transformers.LlamaConfig(**ARCHS[spec["arch"]], max_position_embeddings=8192,
                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # an 8B model in fp32 would need 32 GB just to be made
    with torch.device(spec["device"]):
        model = transformers.LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(spec["folder"])
    tok.save_pretrained(spec["folder"])


def train_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """ftui's backend exactly as the runner calls it, plus the meter."""
    from ftui.backends.local import hardware
    from ftui.backends.local.train import train_run
    from ftui.core.cost import hardware_price
    from ftui.core.errors import FtuiError
    from ftui.core.events import EventWriter
    from ftui.core.machine import cpu_bf16
    from ftui.core.runs import Run

    run = Run(Path(spec["run_dir"]))
    hw = hardware.detect()
    device = spec["device"]
    if device != hw.device:  # --device cpu on a GPU machine: the CPU decides the precision
        hw = hardware.Hardware("cpu", None, 0, None, cpu_bf16(), hw.cpu_count, hw.ram_total)
    dtype = hardware.precision(hw, run.spec.hyperparameters.precision)
    meter = make_meter(device, spec["warmup"])
    with EventWriter(run.events_path) as events:
        try:
            train_run(run, events=events, should_stop=lambda: False, price=hardware_price(hw.gpu_name, None),
                      sampler=hardware.Sampler(), device=device, dtype=dtype, callbacks=[meter])
        except FtuiError as exc:
            return {"error": str(exc)}
    return {**meter.result(), "precision": dtype}


def train_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """TRL's SFTTrainer as its documentation shows it, with only the settings that must match."""
    try:
        import trl  # noqa: F401
    except ImportError:
        return {"skipped": "trl is not installed here (pip install trl); only ftui's side was measured"}
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from ftui.core.prompts import render_messages
    from ftui.core.runs import Run

    run = Run(Path(spec["run_dir"]))
    hp = run.spec.hyperparameters
    template = run.spec.prompt
    # The same examples as ftui's run, as a conversational prompt-completion dataset.
    dataset = Dataset.from_list([
        {"prompt": render_messages(ex, template), "completion": [{"role": "assistant", "content": ex.reference}]}
        for ex in run.examples("train")
    ])
    must_match: dict[str, Any] = dict(
        max_steps=hp.max_steps, per_device_train_batch_size=hp.batch_size, learning_rate=hp.learning_rate,
        max_length=hp.max_length,
    )
    if hp.grad_accum != 1:
        must_match["gradient_accumulation_steps"] = hp.grad_accum
    if spec["device"] == "cpu":
        # The device must match. Without it TRL's default bf16=True stops on a machine without
        # a GPU ("Your setup doesn't support bf16/gpu. You need to assign use_cpu ..."), so this
        # is what a CPU user writes.
        must_match["use_cpu"] = True
    meter = make_meter(spec["device"], spec["warmup"])
    trainer = SFTTrainer(
        model=spec["model_path"],
        args=SFTConfig(output_dir=str(run.dir / "trl"), **must_match),
        train_dataset=dataset,
        peft_config=LoraConfig(r=hp.lora_r, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout,
                               target_modules=list(hp.target_modules), task_type="CAUSAL_LM"),
        callbacks=[meter],
    )
    args = trainer.args
    trainer.train()
    return {**meter.result(), "precision": "bfloat16 autocast" if args.bf16 else "float32",
            "gradient_checkpointing": args.gradient_checkpointing}


def make_meter(device: str, warmup: int) -> Any:
    """A TrainerCallback that counts the tokens fed to the model and times the optimizer steps."""
    import resource

    import torch
    from transformers import TrainerCallback

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    class Meter(TrainerCallback):
        def __init__(self) -> None:
            self.pending: list[tuple[Any, int]] = []
            self.marks: list[tuple[float, float, float, int, float]] = []
            """Per optimizer step, at its end: (wall time, tokens, sum of squared sequence lengths,
            padded tokens, this process's CPU time)."""
            self.shape: dict[str, Any] = {}
            self.losses: list[float] = []

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            model.register_forward_pre_hook(self.count, with_kwargs=True)
            self.shape = model_shape(model)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()

        def count(self, module, args, kwargs):
            if not module.training:
                return
            mask = kwargs.get("attention_mask")
            if mask is not None and mask.dim() == 2:
                self.pending.append((mask.sum(dim=-1).detach(), mask.numel()))
                return
            ids = kwargs.get("input_ids", args[0] if args else None)
            positions = kwargs.get("position_ids")
            if positions is not None:  # padding-free: sequences restart at position 0
                flat = positions.flatten()
                starts = torch.nonzero(flat == 0).flatten().tolist() + [flat.numel()]
                lengths = torch.tensor([b - a for a, b in zip(starts, starts[1:]) if b > a])
            else:
                lengths = torch.full((ids.shape[0],), ids.shape[-1])
            self.pending.append((lengths, ids.numel()))

        def on_step_end(self, args, state, control, **kwargs):
            sync()
            now = time.perf_counter()
            lengths = [n.to("cpu", torch.float64) for n, _ in self.pending]
            joined = torch.cat(lengths) if lengths else torch.zeros(0, dtype=torch.float64)
            self.marks.append((now, float(joined.sum()), float((joined ** 2).sum()),
                               sum(p for _, p in self.pending), time.process_time()))
            self.pending.clear()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

        def result(self) -> dict[str, Any]:
            measured = self.marks[warmup:]
            if not measured:
                raise SystemExit(f"only {len(self.marks)} steps ran; need more than --warmup {warmup}")
            seconds = measured[-1][0] - self.marks[warmup - 1][0]
            tokens = sum(m[1] for m in measured)
            squares = sum(m[2] for m in measured)
            s = self.shape
            per_token = 4 * s["matmul_params"] + 6 * s["adapter_params"]
            flops = per_token * tokens + 6 * s["layers"] * s["attention_width"] * squares
            if device == "cuda":
                peak = torch.cuda.max_memory_allocated()
            else:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
            cpu_seconds = measured[-1][4] - self.marks[warmup - 1][4]
            return {"steps": len(measured), "seconds": seconds, "cpu_seconds": cpu_seconds, "tokens": int(tokens),
                    "padded_tokens": int(sum(m[3] for m in measured)), "model_flops": flops,
                    "peak_memory_bytes": int(peak), "shape": s,
                    "final_loss": self.losses[-1] if self.losses else None}

    return Meter()


def model_shape(model: Any) -> dict[str, Any]:
    """Parameter counts for the FLOPs formula: matmul weights (LoRA's own excluded), adapter, attention."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    matmul = sum(m.weight.numel() for name, m in base.named_modules()
                 if isinstance(m, torch.nn.Linear) and "lora_" not in name)
    adapter = sum(p.numel() for p in model.parameters() if p.requires_grad)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {"matmul_params": matmul, "adapter_params": adapter, "layers": config.num_hidden_layers,
            "attention_width": config.num_attention_heads * head_dim}


if __name__ == "__main__":
    sys.exit(main())
