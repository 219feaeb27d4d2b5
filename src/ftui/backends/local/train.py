"""LoRA / QLoRA training of a run with transformers' Trainer and peft (loss on completions only).

The Trainer does the loop, gradient accumulation, bf16 autocast, checkpoints and exact resume
(optimizer, scheduler, RNG and data order); ``EventsCallback`` reports progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ftui.core.config import LocalSettings, PromptTemplate
from ftui.core.cost import Price
from ftui.core.errors import ConfigError
from ftui.core.events import EventWriter
from ftui.core.examples import Example
from ftui.core.prompts import render_messages
from ftui.core.runs import Run

IGNORE = -100
"""Label of tokens that carry no loss (the prompt, padding)."""


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


def _collate(pad_id: int):
    import torch  # heavy: training only

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        width = max(len(b["input_ids"]) for b in batch)
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


def _argmax(logits: Any, labels: Any) -> Any:
    return logits.argmax(dim=-1)


def train_run(run: Run, *, events: EventWriter, should_stop: Callable[[], bool], price: Price,
              sampler: Any, device: str, dtype: str, resume_from: Path | None = None,
              spent_before_s: float = 0.0) -> bool:
    """Train the run's adapter; True when it finished, False when stopped (checkpoint saved)."""
    import torch  # heavy: training only
    import transformers
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from ftui.backends.local.callback import EventsCallback
    from ftui.backends.local.models import load_model, load_tokenizer

    spec = run.spec
    hp = LocalSettings(**{**spec["hyperparameters"], "target_modules": tuple(spec["hyperparameters"]["target_modules"])})
    template = PromptTemplate(**spec["prompt"])
    tokenizer = load_tokenizer(spec["model"])
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

    model = load_model(spec["model"], dtype="float32" if hp.quantization == "none" else dtype,
                       quantization=hp.quantization, device=device)
    if hp.quantization != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    # LoRA's A matrices start random: seed them, or two runs (and a run and its resume)
    # start from different adapters.
    transformers.set_seed(int(spec["split"]["seed"]))
    lora = LoraConfig(r=hp.lora_r, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout,
                      target_modules=list(hp.target_modules), task_type="CAUSAL_LM")
    try:
        model = get_peft_model(model, lora)
    except ValueError as exc:
        raise ConfigError(f"target_modules {list(hp.target_modules)}: {exc}") from None

    has_val = bool(encoded["val"])
    args = transformers.TrainingArguments(
        output_dir=str(run.dir / "checkpoints"),
        per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.grad_accum,
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps,
        warmup_steps=0.05,  # a fraction: 5% of the steps
        lr_scheduler_type="linear",
        logging_steps=1,
        eval_strategy="steps" if has_val else "no",
        eval_steps=hp.eval_every,
        save_strategy="steps",
        save_steps=hp.eval_every,
        report_to="none",
        disable_tqdm=True,
        bf16=dtype == "bfloat16",
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        # accelerate's seedable random sampler: the same order after a resume's skip. (The
        # length-grouped sampler draws from the global RNG when iterated, so a resumed run
        # would see other batches.)
        train_sampling_strategy="random",
        seed=int(spec["split"]["seed"]),
        save_only_model=False,
    )
    callback = EventsCallback(events, should_stop=should_stop, price=price, sampler=sampler,
                              spent_before_s=spent_before_s)
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=_Rows(encoded["train"]),
        eval_dataset=_Rows(encoded["val"]) if has_val else None,
        data_collator=_collate(tokenizer.pad_token_id), processing_class=tokenizer,
        compute_metrics=_token_accuracy if has_val else None,
        preprocess_logits_for_metrics=_argmax if has_val else None,
        callbacks=[callback],
    )
    trainer.remove_callback(transformers.PrinterCallback)  # events replace its printed dicts
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except torch.OutOfMemoryError:
        raise ConfigError(
            f"out of memory on {device} with batch_size={hp.batch_size}, max_length={hp.max_length}: "
            "lower them (--set batch_size=... max_length=...) or use --set quantization=4bit on a GPU"
        ) from None
    if callback.stopped:
        return False
    model.save_pretrained(run.dir / "adapter")
    tokenizer.save_pretrained(run.dir / "adapter")
    return True
