"""What the training benchmarks share, and the child processes they start.

``train_throughput.py`` (ftui against TRL's SFTTrainer) and ``gpu_check.py`` (ftui's methods on
a GPU) build their models, examples and run directories with these functions, and train each
side in a child process of this script (``_training.py --child SIDE --spec FILE``), so that every
side's peak memory is its own:

- ``build``: a random-weight Llama of a named shape, saved once with a tokenizer;
- ``ours``: ``ftui.backends.local.train.train_run``, exactly as the runner calls it;
- ``baseline``: TRL's ``SFTTrainer`` with its defaults (train_throughput.py's docstring says which);
- ``gemm``: the bf16 GEMM ceiling of a model's matmul shapes on this CPU (``gemm_ceiling``).

Both training sides carry the same meter (``make_meter``): trained tokens, wall and CPU time
per optimizer step after warm-up, peak memory, and model FLOPs by the formula in
``Meter.result``: per trained token 2 FLOPs per matmul weight for the forward, 2 for the
backward to its input, 2 more for its weight gradient where that weight trains (6N for full
fine-tuning, 4N + 6 x adapter for LoRA, whose frozen weights need no weight gradient), plus
causal attention.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import use_source_tree  # noqa: E402

use_source_tree()

EMBEDDED = "smollm2-135m"

ARCHS: dict[str, dict[str, Any]] = {
    # Llama 3.2 1B and Llama 3.1 8B shapes (their config.json on the hub), random weights. Their
    # "llama3" rope scaling is left out: it changes the rotary frequencies, not the work.
    "llama-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0),
    "llama-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False, rope_theta=500000.0),
    # A small one, to try the random-weight path on a CPU in seconds.
    "llama-tiny": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True),
}

WORDS = (
    "the of and to in is was for on that with as by at from his her they this which have are be one had not "
    "but what all were when we there can an your been has more if will so no out up into time only new some "
    "could these two may first then do any like my now over such our man me even most made after also did "
    "many before must through back years where much way well down should because each just those people how "
    "too little state good very make world still own see men work long get here between both life being under "
    "never day same another know while last might us great old year off come since against go came right used "
    "take three table query select where count order group name value date city price total number region"
).split()


def peak_tflops(gpu_name: str | None, override: float | None) -> tuple[float | None, str | None]:
    if override:
        return override, "--peak-tflops"
    if gpu_name is None:
        return None, None
    from ftui.core.mfu import gpu_peak  # the table ftui show's MFU uses

    peak = gpu_peak(gpu_name)
    return peak if peak else (None, f"{gpu_name} is not in the table: pass --peak-tflops for MFU")


def make_run(data: str, model_ref: str, settings: dict[str, Any], total: int, seq_len: int, home: Path,
             *, seed: int, more: Sequence[str] = ()) -> Path:
    """A run directory as ``ftui train`` makes it; validation and checkpoints fall after the last step.

    ``more``: further ``--set`` items (``method=full``, ``quantization=4bit``).
    """
    from ftui.core.request import RunRequest, prepare_run

    overrides = [f"batch_size={settings['batch_size']}", f"max_length={settings['max_length']}",
                 f"learning_rate={settings['learning_rate']}", f"eval_every={total + 1}", *more]
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


def run_child(side: str, spec: dict[str, Any], home: Path, *, label: str | None = None,
              timeout: float | None = None) -> dict[str, Any]:
    """Run ``side`` in a child process of this script; its result, or one with ``error`` set (the
    log's tail) when it failed or ran past ``timeout`` seconds (then it is killed)."""
    out = home / f"result-{side}-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    spec_path = out.with_suffix(".spec.json")
    spec_path.write_text(json.dumps({**spec, "out": str(out)}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1] / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    label = label or {"ours": "ftui", "baseline": "TRL SFTTrainer (defaults)", "build": "building the model",
                      "gemm": "the bf16 GEMM ceiling of the model's shapes"}[side]
    print(f"... {label}", flush=True)
    began = time.monotonic()
    with open(log, "w", encoding="utf-8") as f:
        try:
            proc = subprocess.run([sys.executable, __file__, "--child", side, "--spec", str(spec_path)],
                                  stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  timeout=timeout)
            failed = f"failed (exit {proc.returncode})" if proc.returncode != 0 else ""
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            failed = f"did not finish within {timeout:.0f} s and was stopped"
    result = json.loads(out.read_text()) if out.is_file() and not failed else {}
    if not result:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        result["error"] = f"{label} {failed or 'wrote no result'}; log tail:\n{tail}"
    result["wall_s"] = round(time.monotonic() - began, 1)
    return result


def versions() -> dict[str, str | None]:
    import importlib.metadata as md

    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


# -- children ------------------------------------------------------------------------------

def child(side: str, spec: dict[str, Any]) -> int:
    if side == "build":
        result: dict[str, Any] = {"folder": spec["folder"], "params": build_model(spec)}
    elif side == "ours":
        result = train_ours(spec)
    elif side == "gemm":
        result = gemm_ceiling(json.loads((Path(spec["model_path"]) / "config.json").read_text()),
                              tokens=spec["tokens"], reps=spec.get("reps", 5))
    else:
        result = train_baseline(spec)
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


def build_model(spec: dict[str, Any]) -> int:
    """A Llama of the named shape with random weights, saved in bf16 with a tokenizer: the
    embedded model's, or ``word_tokenizer()`` for ``spec["tokenizer"] == "words"``. Returns its
    parameter count."""
    import torch
    import transformers

    from ftui.backends.local.models import load_tokenizer

    # Either's ids fit in any of these vocabularies.
    tok = word_tokenizer() if spec.get("tokenizer") == "words" else load_tokenizer(EMBEDDED)
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
    return sum(p.numel() for p in model.parameters())


def word_tokenizer() -> Any:
    """A tokenizer made here, needing no download and not the embedded model's package: one token
    per word of ``WORDS`` (any other word is ``<unk>``), so a synthetic example of n words is
    n tokens plus the chat template's few, and a plain chat template."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
    vocab = {t: i for i, t in enumerate([*specials, *sorted(set(WORDS))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>",
                                               eos_token="</s>", unk_token="<unk>")
    tok.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|> {% endif %}")
    return tok


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
    meter = make_meter(device, spec["warmup"], memory=spec.get("memory", False))
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
    meter = make_meter(spec["device"], spec["warmup"], memory=spec.get("memory", False))
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


def make_meter(device: str, warmup: int, *, memory: bool = False) -> Any:
    """A TrainerCallback that counts the tokens fed to the model and times the optimizer steps;
    with ``memory``, also this process's resident memory at each step (``memory_mark``)."""
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
            self.memory: list[list[int | None]] = []
            """With ``memory``, per optimizer step: ``memory_mark()``."""
            self.before_peak: int | None = None
            """With ``memory``: the most resident memory before the first step (loading the model)."""

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            model.register_forward_pre_hook(self.count, with_kwargs=True)
            self.shape = model_shape(model)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            if memory:
                self.before_peak = memory_mark()[1]

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
            if memory:
                self.memory.append(memory_mark())

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
            # Per token: 2 FLOPs per matmul weight forward, 2 backward to the input, 2 for the
            # weight gradient where the weight trains (none for LoRA's frozen base: 4N; all for
            # full fine-tuning: 6N); adapter weights all three. Causal attention (QK^T and the
            # weighted sum, half the square of a sequence; backward twice the forward):
            # 6 x layers x width x length per token, so the squared lengths.
            per_token = 4 * s["matmul_params"] + 2 * s["trained_matmul_params"] + 6 * s["adapter_params"]
            flops = per_token * tokens + 6 * s["layers"] * s["attention_width"] * squares
            if device == "cuda":
                peak = torch.cuda.max_memory_allocated()
            elif memory:  # each mark sets the kernel's high-water mark back: the most of them
                peak = max([self.before_peak or 0, *(m[1] or 0 for m in self.memory)])
            else:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
            cpu_seconds = measured[-1][4] - self.marks[warmup - 1][4]
            return {"steps": len(measured), "seconds": seconds, "cpu_seconds": cpu_seconds, "tokens": int(tokens),
                    "padded_tokens": int(sum(m[3] for m in measured)), "model_flops": flops,
                    "peak_memory_bytes": int(peak), "shape": s,
                    "final_loss": self.losses[-1] if self.losses else None,
                    **({"memory": self.memory, "before_peak_rss": self.before_peak} if memory else {})}

    return Meter()


def memory_mark() -> list[int | None]:
    """This process now: [resident set, the most of it since the last mark, glibc's heap bytes
    in use, freed but kept, and in blocks mapped on their own] (bytes; None where unknown).

    The most since the last mark is Linux's ``VmHWM``, set back to the resident set after each
    reading (writing 5 to ``/proc/self/clear_refs``), so that each step has its own peak.
    """
    status: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    status[line[:5]] = int(line.split()[1]) * 1024  # kB
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass
    return [status.get("VmRSS"), status.get("VmHWM"), *heap_stats()]


def heap_stats() -> tuple[int | None, int | None, int | None]:
    """glibc's heaps (all arenas), from ``mallinfo2``: bytes allocated and not freed, freed but
    kept (resident unless trimmed), and in blocks mapped on their own; Nones elsewhere."""
    import ctypes

    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None, None, None
        libc = ctypes.CDLL(None)
    except (ValueError, OSError, AttributeError):  # not glibc
        return None, None, None
    if not hasattr(libc, "mallinfo2"):  # glibc before 2.33
        return None, None, None

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks), int(info.fordblks), int(info.hblkhd)


def linear_shapes(config: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    """(name, in features, out features, how many) of the Linear layers of a Llama-family model,
    from its ``config.json``; the output layer included."""
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    kv = config.get("num_key_value_heads") or heads
    inter = config["intermediate_size"]
    return [("q_proj", hidden, heads * head_dim, layers), ("k_proj", hidden, kv * head_dim, layers),
            ("v_proj", hidden, kv * head_dim, layers), ("o_proj", heads * head_dim, hidden, layers),
            ("gate_proj", hidden, inter, layers), ("up_proj", hidden, inter, layers),
            ("down_proj", inter, hidden, layers), ("lm_head", hidden, config["vocab_size"], 1)]


def gemm_ceiling(config: dict[str, Any], *, tokens: int, reps: int = 5) -> dict[str, Any]:
    """The bf16 matmul rate of the model's Linear shapes on this CPU, with torch's threads as the
    training children have them: each shape's forward ``[tokens x in] @ [in x out]`` (as
    ``F.linear`` with the weight stored out x in) and its backward to the input ``[tokens x out]
    @ [out x in]``, the best of ``reps`` timings each, weighted by how many layers have it; so
    the rate of one pass of the model's matmuls at training's row count, nothing else in it."""
    import torch

    torch.manual_seed(0)
    flops = seconds = 0.0
    shapes = []
    with torch.inference_mode():
        for name, fan_in, fan_out, count in linear_shapes(config):
            w = torch.randn(fan_out, fan_in).to(torch.bfloat16)
            x = torch.randn(tokens, fan_in).to(torch.bfloat16)
            g = torch.randn(tokens, fan_out).to(torch.bfloat16)
            best = float("inf")
            for i in range(reps + 1):  # the first call is a warm-up (oneDNN picks its kernel)
                began = time.perf_counter()
                torch.nn.functional.linear(x, w)
                torch.matmul(g, w)
                took = time.perf_counter() - began
                best = took if i and took < best else best
            flops += count * 2 * (2 * tokens * fan_in * fan_out)
            seconds += count * best
            shapes.append([name, fan_in, fan_out, count])
    return {"tflops_per_s": flops / seconds / 1e12, "tokens": tokens, "threads": torch.get_num_threads(),
            "shapes": shapes, "reps": reps}


def model_shape(model: Any) -> dict[str, Any]:
    """Parameter counts for the FLOPs formula and the report.

    ``matmul_params``: the base model's Linear weights, the output layer included (LoRA's own
    excluded), each counted as in x out so that a 4-bit layer, stored packed, counts its real
    size; ``trained_matmul_params``: those of them that train; ``adapter_params``: the other
    trained parameters (LoRA's A and B, DoRA's magnitudes, norms in full fine-tuning), the
    input embeddings left out since a lookup is no matmul.
    """
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    linears = [m for name, m in base.named_modules() if isinstance(m, torch.nn.Linear) and "lora_" not in name]
    counted = {id(m.weight) for m in linears}
    embeddings = model.get_input_embeddings()
    if embeddings is not None:
        counted.add(id(embeddings.weight))
    trained = [p for p in model.parameters() if p.requires_grad]
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {"matmul_params": sum(m.in_features * m.out_features for m in linears),
            "trained_matmul_params": sum(m.in_features * m.out_features for m in linears if m.weight.requires_grad),
            "adapter_params": sum(p.numel() for p in trained if id(p) not in counted),
            "trainable_params": sum(p.numel() for p in trained),
            "layers": config.num_hidden_layers, "attention_width": config.num_attention_heads * head_dim}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="a child process of the training benchmarks")
    p.add_argument("--child", choices=("build", "ours", "baseline", "gemm"), required=True)
    p.add_argument("--spec", required=True, help="a JSON file: what to do, and where to write the result")
    a = p.parse_args()
    sys.exit(child(a.child, json.loads(Path(a.spec).read_text())))
