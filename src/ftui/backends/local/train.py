"""Training of a run with transformers' Trainer (loss on completions only), by its method:
LoRA, DoRA, IA3 or prefix tuning through peft (QLoRA: LoRA/DoRA on a 4/8-bit base), or full
fine-tuning (every weight trains; the whole model is saved to ``model/``).

The Trainer does the loop, gradient accumulation, bf16 autocast, checkpoints and exact resume
(optimizer, scheduler, RNG and data order); ``EventsCallback`` reports progress.

Where the time goes, and what ftui changes from a plain Trainer (benchmarks/train_throughput.py
measures it against TRL's SFTTrainer with its defaults):

- No gradient checkpointing (TRL turns it on by default): LoRA keeps the activations of a small
  model in memory easily, and recomputing them costs a third more compute.
- Batches of similar length (``SimilarLengthSampler``): random batches of the demo's examples
  are about a quarter padding; grouped ones almost none. The order is still random and seeded,
  and a function of (seed, epoch) alone, so a resumed run sees the same batches. Their width
  is rounded up to a multiple of ``PAD_MULTIPLE`` so that a long run meets few shapes (memory,
  see there).
- On a CPU, freed heap memory goes back to the system every ``HEAP_TRIM_EVERY`` steps (see
  there and ``core.machine.heap_trimmer``), so the resident set does not climb between steps.
- The output layer runs only where there is a label (``_CompletionLossTrainer``): the prompt is
  most of each example and carries no loss, and the vocabulary projection with its
  cross-entropy is a fifth of a small model's work. Same loss, same gradients.
- With bf16 autocast, the frozen base weights are stored in bf16 (``_frozen_weights_to_bf16``):
  autocast rounds them to bf16 for every matmul anyway, so the results are bit for bit the
  same, with half the weight memory and no re-casting on every forward.
- The optimizer is transformers' default, torch's fused AdamW.
- On a CPU, LoRA's dropout draws its masks from 16 random bits per element
  (``_cpu_lora_dropout``): torch's Bernoulli sampling there was a fifth of a step's time.
- On a CPU, a training batch of short rows goes through transformers' eager attention (matmuls
  and a softmax) rather than PyTorch's fused CPU kernel, which is slower at these widths
  (``EAGER_ATTENTION_CELLS``): the same attention, and the reference one transformers tests
  the others against.
- On a CPU, a batch of more than ``core.machine.CPU_MICRO_BATCH_TOKENS`` positions goes through the model in
  micro-batches of whole rows (``micro_batches``), each backward adding its part of the batch's
  gradient: what a step holds at its peak is one micro-batch's activations, not the batch's.
  Each part's loss is its summed cross-entropy over the whole batch's labelled tokens, so the
  parts add up to the batch's loss and gradients (``tests/test_speed_train.py``).
- Validation reads ``val_rows`` rows of the split (a seeded subset, ``core.validation``), longest
  first in batches twice the training batch, and only the logits at the labelled positions (as
  the training loss does): same loss and token accuracy as the usual evaluation of those rows.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ftui.core.config import LocalSettings, PromptTemplate
from ftui.core.cost import Price
from ftui.core.errors import ConfigError
from ftui.core.events import EventWriter
from ftui.core.examples import Example
from ftui.core.machine import micro_batch_positions, micro_batch_rows
from ftui.core.prompts import render_messages
from ftui.core.runs import Run

IGNORE = -100
"""Label of tokens that carry no loss (the prompt, padding)."""
SCHEDULER_TYPES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
"""``LocalSettings.lr_scheduler`` -> transformers' ``lr_scheduler_type`` (each warms up first)."""


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


def encode(tokenizer: Any, example: Example, template: PromptTemplate, max_length: int) -> Encoded:
    """Token ids of prompt + answer, with labels only on the answer (and its end-of-turn)."""
    prompt = render_messages(example, template)
    prompt_ids = _ids(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))
    full = prompt + [{"role": "assistant", "content": example.reference}]
    full_ids = _ids(tokenizer.apply_chat_template(full, tokenize=True))
    if full_ids[: len(prompt_ids)] != prompt_ids:
        # A template that renders the prompt differently inside a full conversation:
        # append the answer and end-of-sequence to the generation prompt ourselves.
        answer = tokenizer(example.reference, add_special_tokens=False)["input_ids"]
        full_ids = prompt_ids + answer + [tokenizer.eos_token_id]
    labels = [IGNORE] * len(prompt_ids) + full_ids[len(prompt_ids):]
    truncated = len(full_ids) > max_length
    return Encoded(full_ids[:max_length], labels[:max_length], truncated)


def _ids(out: Any) -> list[int]:
    # transformers 5 returns a BatchEncoding for tokenize=True; older versions a list.
    if isinstance(out, dict) or hasattr(out, "keys"):
        out = out["input_ids"]
    return list(out)


class _Rows:
    """A minimal map-style dataset of encoded rows (the Trainer needs __len__/__getitem__)."""

    def __init__(self, rows: Sequence[Encoded]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        r = self.rows[i]
        return {"input_ids": r.input_ids, "labels": r.labels, "attention_mask": [1] * len(r.input_ids)}


class SimilarLengthSampler:
    """Seeded random batches of similar length; the order depends on (seed, epoch) only.

    Each epoch shuffles the examples with a generator seeded from ``seed`` and the epoch, sorts
    each window of ``window_batches`` batches by length, cuts the windows into batches and
    shuffles the full batches; the remainder (fewer than ``batch_size`` examples) comes last,
    so the DataLoader's own batching cuts exactly these batches. transformers' sampler for
    ``train_sampling_strategy="group_by_length"`` draws from the global RNG when iterated, so after a resume it would
    give other batches than the interrupted run; this one gives the same (the Trainer calls
    ``set_epoch`` before each epoch, and skips the batches already trained).
    """

    def __init__(self, lengths: Sequence[int], *, batch_size: int, seed: int, window_batches: int = 16) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.window = batch_size * window_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        return iter(self.order(self.epoch))

    def order(self, epoch: int) -> list[int]:
        import torch  # heavy: training only

        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.lengths), generator=g).tolist()
        grouped: list[int] = []
        for start in range(0, len(perm), self.window):
            grouped += sorted(perm[start:start + self.window], key=lambda i: -self.lengths[i])
        full = len(grouped) - len(grouped) % self.batch_size
        batches = [grouped[i:i + self.batch_size] for i in range(0, full, self.batch_size)]
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        return [i for batch in shuffled for i in batch] + grouped[full:]


PAD_MULTIPLE = 32
"""Batches are padded to a width that is a multiple of this (up to ``max_length``). Every new
batch shape costs memory that stays: the CPU kernels (oneDNN's primitives, their scratch and
reordered weights) are cached per shape, and with a width per batch a run on rows of varied
lengths met a new shape nearly every step. Measured with ``benchmarks/memory.py --quick`` (2
cores, rows of 64-128 tokens, 40 steps after warm-up): the resident set grew 1,159 MiB per 100
steps (43% of the peak) with exact widths, 81 to 361 MiB (4-17%, three runs) with widths
rounded up to 32, at the same step time (1.80 s; 1.76-1.99 s); the padding is masked and carries no label, so the loss is
the same."""


def _collate(pad_id: int, *, multiple: int = PAD_MULTIPLE, max_length: int | None = None):
    """Pads a batch to its longest row, rounded up to ``multiple`` (not past ``max_length``, unless
    a row is longer)."""
    import torch  # heavy: training only

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        longest = max(len(b["input_ids"]) for b in batch)
        width = -(-longest // multiple) * multiple
        if max_length is not None:
            width = max(longest, min(width, max_length))
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            labels[i, :n] = torch.tensor(b["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return collate


def _token_accuracy(eval_pred: Any) -> dict[str, float]:
    preds, labels = eval_pred.predictions, eval_pred.label_ids
    preds, labels = preds[:, :-1], labels[:, 1:]  # logits at t predict token t+1
    keep = labels != IGNORE
    total = int(keep.sum())
    return {"token_accuracy": float((preds[keep] == labels[keep]).sum() / total) if total else 0.0}


def _token_accuracy_of_counts(eval_pred: Any) -> dict[str, float]:
    """Token accuracy from each validation example's (right, counted) tokens."""
    right, total = eval_pred.predictions[:, 0].sum(), eval_pred.predictions[:, 1].sum()
    return {"token_accuracy": float(right / total) if total else 0.0}


def _argmax(logits: Any, labels: Any) -> Any:
    return logits.argmax(dim=-1)


HEAP_TRIM_EVERY = 10
"""Optimizer steps between two ``malloc_trim`` calls on a CPU. Measured with
``benchmarks/memory.py`` (2 cores): trimming after every step kept the resident set between
steps at 1.3 GiB instead of 6.8 GiB on the spider shape (batch 8, rows of 256-512 tokens) and
its growth per 100 steps at 2.7% of the peak (17% before), but the next step faults the pages
back in: 16.0 s a step instead of 12.8 s there (no difference at batch 4, 128 tokens). Every
10th step keeps the resident set from climbing for a tenth of that cost. What a step itself
holds at its peak (the activations: 7.5 GiB at that shape) trimming does not change."""


MMAP_THRESHOLD = 8 * 2**20
"""On a CPU, allocations of this size or more get their own mapping, handed back when freed
(``machine.fix_mmap_threshold``): a step's large activations and logits no longer stay in the
heap between steps."""


def _heap_trim_callback(transformers: Any, device: str) -> list[Any]:
    """On a CPU, a callback that fixes glibc's mmap threshold at ``MMAP_THRESHOLD`` when training
    begins and gives freed heap memory back to the system every ``HEAP_TRIM_EVERY`` optimizer
    steps (``machine.heap_trimmer``); none elsewhere or without glibc."""
    from ftui.core.machine import fix_mmap_threshold, heap_trimmer

    trim = heap_trimmer() if device == "cpu" else None
    if trim is None:
        return []

    class HeapTrim(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            fix_mmap_threshold(MMAP_THRESHOLD)

        def on_step_end(self, args, state, control, **kwargs):
            if state is None or state.global_step % HEAP_TRIM_EVERY == 0:
                trim(0)

    return [HeapTrim()]


EAGER_ATTENTION_CELLS = 2**18
"""On a CPU, training batches with at most this many cells in a head's attention matrix (rows x
width x width: 8 rows of up to 181 tokens, 4 of up to 256) use transformers' ``eager`` attention
instead of ``sdpa``. Timed alone on 2 cores (demo batches of 8 rows, 128-192 wide, embedded
model, LoRA, bf16 autocast; four repetitions of 6 steps each): 16.5-16.9 s against 19.9-20.6 s
with sdpa (its fused CPU kernel, forward and backward, is the slow part). Eager keeps each
layer's attention matrix for the backward (about 6 bytes a cell per head: 0.4 GiB for the
embedded model at this bound), which is why wider batches keep the fused kernel."""

def micro_batches(inputs: dict[str, Any], budget: int) -> list[dict[str, Any]]:
    """The batch split by rows into micro-batches of at most ``budget`` positions (the batch's own
    width: each part keeps the shapes the batch has); the whole batch when it fits."""
    first = next(iter(inputs.values()))
    rows, width = first.shape[0], first.shape[-1]
    per = micro_batch_rows(rows, width, budget)
    if per >= rows:
        return [inputs]
    return [{k: (v[i:i + per] if hasattr(v, "shape") and v.shape[:1] == (rows,) else v) for k, v in inputs.items()}
            for i in range(0, rows, per)]


def micro_batch_budget(hp: LocalSettings, device: str) -> int:
    """The positions per micro-batch a run trains with (0: whole batches):
    ``core.machine.micro_batch_positions`` of the setting, with this process's ``WORLD_SIZE``."""
    return micro_batch_positions(hp.micro_batch_tokens, device, processes=int(os.environ.get("WORLD_SIZE", "1")))


def paths_summary(paths: dict[str, int], *, dropouts: int, budget: int) -> str:
    """The line a CPU run logs at its end: which of the speed-ups at the top of this module its
    training steps went through (``paths``: the trainer's ``ftui_paths`` counts)."""
    forwards = paths["eager"] + paths["sdpa"]
    micro = (f"{paths['micro_batched']} batch(es) over {budget} positions split into {paths['parts']} micro-batches"
             if budget else "whole batches (micro_batch_tokens off)")
    return (f"CPU training paths: {paths['eager']} of {forwards} training forwards through eager attention "
            f"(batches of at most {EAGER_ATTENTION_CELLS} rows x width^2), the rest sdpa; {micro}; "
            f"LoRA dropout from 16-bit draws in {dropouts} module(s)")


@contextlib.contextmanager
def _attention(config: Any, implementation: str | None) -> Iterator[None]:
    """The model's attention implementation switched to ``implementation`` (None: unchanged),
    from ``sdpa`` only; transformers reads it from the config at every forward."""
    if implementation is None or getattr(config, "_attn_implementation", None) != "sdpa":
        yield
        return
    config._attn_implementation = implementation
    try:
        yield
    finally:
        config._attn_implementation = "sdpa"


def _trainer_class(transformers: Any, model: Any, *, micro_batch_tokens: int = 0) -> Any:
    """transformers' Trainer with the changes described at the top of this module; batches of
    more than ``micro_batch_tokens`` positions (0: no limit) train in micro-batches."""
    import importlib
    import inspect

    import torch  # heavy: training only

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    # The output layer on selected positions only needs `logits_to_keep` with a boolean mask
    # (transformers >= 5.x slices the hidden states with it before the output layer).
    sparse_head = ("logits_to_keep" in inspect.signature(base.forward).parameters
                   and hasattr(importlib.import_module("transformers.modeling_utils"), "slice_logits_to_keep"))

    class _CompletionLossTrainer(transformers.Trainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Training forwards through eager attention and through sdpa, batches split into
            # micro-batches: what the run's summary reports (``paths_summary``).
            self.ftui_paths = {"eager": 0, "sdpa": 0, "micro_batched": 0, "parts": 0}
            if sparse_head and self.compute_metrics is _token_accuracy:
                # Validation reads the logits at the labelled positions only (prediction_step
                # below): each example hands back its (right, counted) tokens, not the argmaxes
                # of every position's logits.
                self.compute_metrics, self.preprocess_logits_for_metrics = _token_accuracy_of_counts, None

        def _completion_logits(self, model: Any, inputs: dict[str, Any], *, eager: bool = False) -> tuple[Any, Any, Any]:
            """(logits, targets) at the positions whose next token has a label, and those
            positions (a boolean mask of the batch; the logits are its True cells in row order).
            ``eager``: through transformers' eager attention where the model uses sdpa."""
            labels = inputs["labels"]
            # The logits at position t predict token t + 1: keep the positions whose next token
            # has a label, exactly the ones the usual shifted cross-entropy counts.
            keep = torch.zeros_like(labels, dtype=torch.bool)
            keep[:, :-1] = labels[:, 1:] != IGNORE
            targets = labels[:, 1:][keep[:, :-1]]
            with _attention(base.config, "eager" if eager else None):
                logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                               logits_to_keep=keep).logits
            if logits.dim() == 3:  # a model that ignores a mask here: every position came back
                logits = logits[keep]
            return logits, targets, keep

        def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                            ignore_keys: Any = None) -> Any:
            if (not sparse_head or "labels" not in inputs or self.label_smoother is not None
                    or self.compute_loss_func is not None):
                return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad(), self.compute_loss_context_manager():
                logits, targets, keep = self._completion_logits(model, inputs)
                # The mean over the batch's labelled tokens: transformers' causal-LM loss.
                loss = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum") / max(
                    int(targets.numel()), 1)
                if prediction_loss_only:
                    return loss.detach(), None, None
                hits = torch.zeros_like(keep, dtype=torch.long)
                hits[keep] = (logits.argmax(dim=-1) == targets).long()
            # One (right, counted) row per example: the loop's gathering across processes drops
            # the duplicated examples of an uneven last batch row by row, as it would logits.
            counts = torch.stack([hits.sum(dim=1), keep.sum(dim=1)], dim=1)
            return loss.detach(), counts, counts

        def _get_train_sampler(self, train_dataset: Any = None, *args: Any, **kwargs: Any) -> Any:
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if not isinstance(dataset, _Rows):
                return super()._get_train_sampler(train_dataset, *args, **kwargs)
            return SimilarLengthSampler([len(r.input_ids) for r in dataset.rows],
                                        batch_size=self.args.train_batch_size, seed=self.args.seed)

        def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
            parts = micro_batches(inputs, micro_batch_tokens) if (
                sparse_head and "labels" in inputs and self.label_smoother is None
                and self.compute_loss_func is None) else [inputs]
            if len(parts) == 1:
                return super().training_step(model, inputs, num_items_in_batch)
            self.ftui_paths["micro_batched"] += 1
            self.ftui_paths["parts"] += len(parts)
            # Each part's loss is its summed cross-entropy over the labelled tokens of the whole
            # batch (or of the accumulated batches, when the Trainer counted them), so the parts'
            # losses and gradients add up to the batch's; divided by the accumulation steps
            # where transformers' training_step divides the whole batch's loss.
            scaled = getattr(self, "loss_is_scaled_for_ga", None)
            if scaled is None:
                scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or \
                    self.compute_loss_func is not None
            whole = num_items_in_batch
            if whole is None:
                whole = max(int((inputs["labels"][:, 1:] != IGNORE).sum()), 1)
            steps = getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
            model.train()
            if callable(getattr(self.optimizer, "train", None)):
                self.optimizer.train()
            total = None
            for part in parts:
                part = self._prepare_inputs(part)
                with self.compute_loss_context_manager():
                    loss = self.compute_loss(model, part, num_items_in_batch=whole)
                if not scaled:
                    loss = loss / steps
                self.accelerator.backward(loss)
                total = loss.detach() if total is None else total + loss.detach()
                del part, loss  # this part's activations go before the next part's forward
            return total

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if (return_outputs or not model.training or not sparse_head or "labels" not in inputs
                    or self.label_smoother is not None or self.compute_loss_func is not None):
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            rows, width = inputs["input_ids"].shape[:2]
            eager = self.args.device.type == "cpu" and rows * width * width <= EAGER_ATTENTION_CELLS
            self.ftui_paths["eager" if eager else "sdpa"] += 1
            logits, targets, _ = self._completion_logits(model, inputs, eager=eager)
            loss = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
            # As transformers' causal-LM loss: divided by the labelled tokens of the whole
            # accumulated batch when the Trainer counted them, else a mean over this batch.
            if num_items_in_batch is None:
                return loss / max(int(targets.numel()), 1)
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes
            return loss / num_items_in_batch

    return _CompletionLossTrainer


def _distributed_args(hp: LocalSettings, model: Any, device: str) -> dict[str, Any]:
    """TrainingArguments for several processes (torchrun sets WORLD_SIZE): DDP over gloo on
    CPUs and NCCL on GPUs, or FSDP sharding each decoder layer (peft's LoRA supports both)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return {}
    out: dict[str, Any] = {"ddp_backend": "gloo" if device == "cpu" else "nccl",
                           "ddp_find_unused_parameters": False}
    if hp.distributed == "fsdp":
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        layers = sorted(getattr(base, "_no_split_modules", None) or [])
        out["fsdp"] = "full_shard auto_wrap"
        out["fsdp_config"] = {"use_orig_params": True,  # frozen and trainable weights in one layer
                              **({"transformer_layer_cls_to_wrap": layers} if layers else {})}
    return out


DROPOUT_BITS = 16
"""Resolution of ``_cpu_lora_dropout``'s masks: the dropout probability is rounded to a multiple
of 2**-16 (0.05 becomes 0.0500031), and the kept values are scaled by one over the rounded
keep probability, so each value's expectation is unchanged."""


def _cpu_lora_dropout(model: Any) -> int:
    """Replace LoRA's dropout modules (torch's ``Dropout``) by one drawing its masks from 16 random
    bits per element, four to one 64-bit draw of torch's generator; returns how many were replaced.

    On a CPU torch's dropout samples a Bernoulli per element (a float draw and more), serially:
    with LoRA on q, k, v and o of the embedded model that was 19% of a training step (profiled
    on demo batches, 2 cores: 4.6 ms per call, 120 calls a step); these masks take 0.5-0.7 ms
    (``benchmarks/README.md``). It is still dropout: each element is zeroed with probability
    ``p`` (rounded, ``DROPOUT_BITS``) independently, the rest scaled by ``1 / (1 - p)``, from
    torch's seeded generator (a resumed run restores it), and the backward passes the gradient
    through the same mask. Not on a GPU, where torch's dropout is one fast kernel.
    """
    import torch  # heavy: training only

    class _Mask(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, threshold: int, scale: float) -> Any:
            n = x.numel()
            # all 64 bits (random_() alone leaves the sign bit 0), read as four int16
            bits = torch.empty(-(-n // 4), dtype=torch.int64).random_(-2**63, None).view(torch.int16)[:n]
            drop = (bits < threshold - 2**15).view(x.shape)  # int16 is uniform over [-2**15, 2**15)
            ctx.save_for_backward(drop)
            ctx.scale = scale
            return x.masked_fill(drop, 0).mul_(scale)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (drop,) = ctx.saved_tensors
            return grad.masked_fill(drop, 0).mul_(ctx.scale), None, None

    class BitsDropout(torch.nn.Module):
        def __init__(self, p: float) -> None:
            super().__init__()
            self.p = p
            self.threshold = round(p * 2**DROPOUT_BITS)
            self.scale = 2**DROPOUT_BITS / (2**DROPOUT_BITS - self.threshold)

        def forward(self, x: Any) -> Any:
            if not self.training or self.threshold == 0:
                return x
            return _Mask.apply(x, self.threshold, self.scale)

        def extra_repr(self) -> str:
            return f"p={self.p}, drawn from {DROPOUT_BITS} bits"

    replaced = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, torch.nn.ModuleDict):
            continue
        for name, drop in list(drops.items()):
            if type(drop) is torch.nn.Dropout and 0 < drop.p < 1:
                drops[name] = BitsDropout(drop.p)
                replaced += 1
    return replaced


def _frozen_weights_to_bf16(model: Any) -> int:
    """Store frozen Linear weights in bf16; returns how many were converted.

    Under bf16 autocast every matmul rounds its fp32 weight to bf16 on each call, so storing
    them rounded gives bit-identical results. Trainable (LoRA) weights stay fp32 for the
    optimizer; the output layer stays fp32 when it shares its weight with the embeddings
    (lookups are not autocast); norms and embeddings are not Linear layers.
    """
    import torch  # heavy: training only

    inputs = model.get_input_embeddings()
    shared = inputs.weight if inputs is not None else None
    converted = 0
    for module in model.modules():
        if type(module) is not torch.nn.Linear or module.weight.requires_grad or module.weight is shared:
            continue
        if module.weight.dtype == torch.float32:
            module.to(torch.bfloat16)
            converted += 1
    return converted


def train_run(run: Run, *, events: EventWriter, should_stop: Callable[[], bool], price: Price,
              sampler: Any, device: str, dtype: str, resume_from: Path | None = None,
              spent_before_s: float = 0.0, callbacks: Sequence[Any] = ()) -> bool:
    """Train the run's adapter; True when it finished, False when stopped (checkpoint saved).

    ``callbacks``: more Trainer callbacks (the throughput benchmark's meter).
    """
    import warnings

    import torch  # heavy: training only
    import transformers
    from peft import prepare_model_for_kbit_training

    from ftui.backends.local.callback import EventsCallback
    from ftui.backends.local.hardware import MethodSampler
    from ftui.backends.local.models import load_model, load_tokenizer
    from ftui.core.early_stopping import BestValidation
    from ftui.core.validation import validation_subset

    spec = run.spec
    hp: LocalSettings = spec.hyperparameters
    template = spec.prompt
    tokenizer = load_tokenizer(spec.model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = {name: [encode(tokenizer, ex, template, hp.max_length) for ex in run.examples(name)]
               for name in ("train", "val")}
    cut = sum(e.truncated for e in encoded["train"])
    if cut:
        events.write("log", level="warning",
                     message=f"{cut} training example(s) longer than max_length={hp.max_length} were truncated")
    if not encoded["train"]:
        raise ConfigError("the training split is empty")

    model = load_model(spec.model, dtype="float32" if hp.quantization == "none" else dtype,
                       quantization=hp.quantization, device=device)
    if hp.quantization != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    # Adapters start random (LoRA's A matrices, prefix vectors): seed them, or two runs (and a
    # run and its resume) start from different adapters.
    transformers.set_seed(spec.split.seed)
    model = with_method(model, hp)
    dropouts = _cpu_lora_dropout(model) if device == "cpu" else 0
    if hp.method == "prefix":
        # peft hands the prefix to the model as `past_key_values`, which transformers 5 warns
        # about on every forward: noise in runner.log, not a problem of the run.
        warnings.filterwarnings("ignore", message=r".*past_key_values.* is deprecated", category=FutureWarning)
    if dtype == "bfloat16" and hp.quantization == "none" and hp.method != "full" and not (
            hp.distributed == "fsdp" and int(os.environ.get("WORLD_SIZE", "1")) > 1):
        # (FSDP flattens a layer's weights into one tensor of one dtype: bf16 and fp32 LoRA
        # weights could not share it.)
        _frozen_weights_to_bf16(model)
    trainable, total = count_parameters(model)
    events.write("log", level="info", message=(
        f"method {hp.method}: {trainable:,} trainable parameters of {total:,} ({100 * trainable / max(total, 1):.2f}%)"))
    sampler = MethodSampler(sampler, method=hp.method, trainable=trainable, total=total, device=device)

    # The rows every validation pass reads (core.validation): a seeded subset, longest first so
    # that each eval batch holds rows of similar length (the eval DataLoader keeps this order).
    val_subset = [encoded["val"][i] for i in validation_subset(
        [len(e.input_ids) for e in encoded["val"]], val_rows=hp.val_rows, seed=spec.split.seed)]
    has_val = bool(val_subset)
    args = transformers.TrainingArguments(
        output_dir=str(run.dir / "checkpoints"),
        per_device_train_batch_size=hp.batch_size,
        # No gradients nor kept activations in a validation pass, and the loss is read at the
        # completion's positions only: twice the training batch fits where training fits.
        per_device_eval_batch_size=2 * hp.batch_size,
        gradient_accumulation_steps=hp.grad_accum,
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps,
        warmup_steps=hp.warmup_steps,  # < 1: a fraction of the steps
        lr_scheduler_type=SCHEDULER_TYPES[hp.lr_scheduler],
        logging_steps=1,
        eval_strategy="steps" if has_val else "no",
        eval_steps=hp.eval_every,
        save_strategy="steps",
        # Saves at the validation steps: each pass has its checkpoint, the best one's weights are
        # kept (below; not the Trainer's load_best_model_at_end, which loses track of its
        # checkpoint-N folders once they are published as step-N).
        save_steps=hp.eval_every,
        report_to="none",
        disable_tqdm=True,
        bf16=dtype == "bfloat16",
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        # Replaced by SimilarLengthSampler (seedable, so a resume sees the same batches).
        train_sampling_strategy="random",
        seed=spec.split.seed,
        save_only_model=False,
        **_distributed_args(hp, model, device),
    )
    callback = EventsCallback(events, should_stop=should_stop, price=price, sampler=sampler,
                              spent_before_s=spent_before_s, best=BestValidation(patience=hp.early_stop_patience),
                              val_rows=len(val_subset))
    trainer = _trainer_class(transformers, model, micro_batch_tokens=micro_batch_budget(hp, device))(
        model=model, args=args, train_dataset=_Rows(encoded["train"]),
        eval_dataset=_Rows(val_subset) if has_val else None,
        data_collator=_collate(tokenizer.pad_token_id, max_length=hp.max_length),
        processing_class=tokenizer,
        compute_metrics=_token_accuracy if has_val else None,
        preprocess_logits_for_metrics=_argmax if has_val else None,
        callbacks=[callback, *_heap_trim_callback(transformers, device), *callbacks],
    )
    trainer.remove_callback(transformers.PrinterCallback)  # events replace its printed dicts
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except torch.OutOfMemoryError:
        raise ConfigError(
            f"out of memory on {device} with batch_size={hp.batch_size}, max_length={hp.max_length}: "
            "lower them (--set batch_size=... max_length=...) or use --set quantization=4bit on a GPU"
        ) from None
    if device == "cpu":
        events.write("log", level="info", message=paths_summary(
            trainer.ftui_paths, dropouts=dropouts, budget=micro_batch_budget(hp, device)))
    if callback.stopped:
        return False
    _keep_best(trainer, run, callback, events, enabled=has_val and hp.keep_best)
    if trainer.is_world_process_zero():  # several processes hold the same weights; one writes them
        # full fine-tuning saves the whole model (model/), the others their adapter (adapter/).
        out = run.model_path if hp.method == "full" else run.adapter_path
        if hp.method == "full" and getattr(trainer, "is_fsdp_enabled", False):
            trainer.save_model(str(out))  # gathers the sharded weights
        else:
            model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        from ftui.backends.local.export import make_portable, refresh_card

        if hp.method != "full":
            # peft wrote the folder the base was loaded from ($FTUI_HOME/models/...): name the
            # base as others find it (ftui loads its own copy and ignores the name).
            make_portable(out, spec.model)
        refresh_card(run)  # peft's empty README template -> the model card (eval follows: refreshed then)
    return True


def _keep_best(trainer: Any, run: Run, callback: Any, events: EventWriter, *, enabled: bool) -> None:
    """Load the weights of the best validation pass into the trained model, when it was not the
    last step, so that they are the ones saved as the result."""
    best, last = callback.best, trainer.state.global_step
    if not enabled or best.step is None or best.step == last:
        return
    folder = run.checkpoints_path / f"step-{best.step}"
    if not folder.is_dir():  # a run resumed from before its best checkpoint was kept from pruning
        events.write("log", level="warning", message=(
            f"the checkpoint of step {best.step}, the lowest validation loss, is gone: kept the last step {last}"))
        return
    # Every process holds the weights; under FSDP each its shard, so all of them load.
    if trainer.is_world_process_zero() or getattr(trainer, "is_fsdp_enabled", False):
        # The Trainer's own loader of a checkpoint's weights, the one a resume uses: it knows
        # adapters, whole models, sharded files and FSDP states.
        trainer._load_from_checkpoint(str(folder))
    events.write("log", level="info", message=(
        f"kept the weights of step {best.step} (validation loss {best.loss:.4f}, the lowest), "
        f"not those of the last step {last}"))


def with_method(model: Any, hp: LocalSettings) -> Any:
    """The model ready to train by ``hp.method``: a peft model, or every weight trainable (full)."""
    if hp.method == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, get_peft_model

    if hp.method in ("lora", "dora"):
        config: Any = LoraConfig(r=hp.lora_r, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout,
                                 target_modules=list(hp.target_modules), use_dora=hp.method == "dora",
                                 task_type="CAUSAL_LM")
        where = f"target_modules {list(hp.target_modules)}"
    elif hp.method == "ia3":
        # peft's modules for the architecture (Llama: k_proj, v_proj and down_proj, the
        # feed-forward one scaled on its input).
        config, where = IA3Config(task_type="CAUSAL_LM"), "method=ia3"
    else:
        config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=hp.num_virtual_tokens)
        where = "method=prefix"
    try:
        return get_peft_model(model, config)
    except (ValueError, TypeError, NotImplementedError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"{where}: peft cannot apply it to this model: {first}") from None


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters; for a peft model, total counts the base and the adapter."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    params = {id(p): p for p in model.parameters()}.values()  # tied weights once
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
