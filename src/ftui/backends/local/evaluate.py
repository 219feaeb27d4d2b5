"""Evaluation of a local run: base, k-shot and fine-tuned variants on the held-out test split.

Each variant writes ``eval/<variant>/predictions.jsonl`` and ``metrics.json`` (the latter
last, so a variant stopped half-way leaves no metrics). Scoring goes through
``ftui.core.scoring`` so every backend's numbers have one definition.
"""

from __future__ import annotations

import gc
import random
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ftui.backends.local.generate import generate_batched
from ftui.backends.local.models import load_model, load_tokenizer
from ftui.core.errors import ConfigError
from ftui.core.evalplan import EvalProgressReporter, choose_shots, plan_eval  # noqa: F401 - choose_shots re-exported
from ftui.core.events import EventWriter
from ftui.core.prompts import render_user
from ftui.core.runs import Run
from ftui.core.scoring import VARIANTS, score_examples, write_eval

if TYPE_CHECKING:
    from ftui.core.config import EvalSettings, PromptTemplate
    from ftui.core.examples import Example
    from ftui.core.scoring import PredictionRecord
    from ftui.core.tasks import Task


class _Stopped(Exception):
    """Raised from the progress callback when ``should_stop()`` says so; never escapes."""


def evaluate_run(run: Run, *, variants: Sequence[str] = VARIANTS, limit: int | None = None,
                 events: EventWriter | None = None, should_stop: Callable[[], bool] | None = None,
                 device: str | None = None, dtype: str = "float32", heldout: str = "") -> dict[str, dict[str, float]]:
    """Evaluate ``variants`` on the run's test split; returns variant -> metrics.

    ``limit``: the first N test examples (default: ``eval.limit`` from run.json, 0 = all).
    ``dtype``: float32 by default, so batched outputs equal one-at-a-time ones (see generate).
    ``heldout``: evaluate on ``data/heldout-NAME.jsonl`` into ``eval/<variant>@NAME/``.
    A stop request ends the current variant between batches without writing its metrics;
    the variants finished before it are returned.
    """
    spec = run.spec
    adapter = run.dir / "adapter"
    if "finetuned" in variants and not (adapter / "adapter_config.json").is_file():
        # Checked before any work, so nobody waits through base and k-shot to learn this.
        raise ConfigError(f"run {run.id} has no adapter yet: train it first (or resume it)")
    plan = plan_eval(run, variants, limit, heldout=heldout)
    settings, template, task, examples = plan.settings, plan.template, plan.task, plan.examples
    shot_indices = plan.shot_indices
    prompts = {v: plan.prompts(v) for v in variants}
    model_id = spec["model"]
    quantization = spec.get("hyperparameters", {}).get("quantization", "none")
    device = device or _default_device()
    tokenizer = load_tokenizer(model_id)
    stopping = should_stop or (lambda: False)
    results: dict[str, dict[str, float]] = {}
    model: Any = None
    loaded: str | None = None  # which weights `model` holds: "base" or "finetuned"
    for variant in variants:
        if stopping():
            break
        wanted = "finetuned" if variant == "finetuned" else "base"
        if loaded != wanted:
            model = None
            _free_memory()  # the previous model goes before the next one loads
            model = load_model(model_id, dtype=dtype, quantization=quantization, device=device)
            if wanted == "finetuned":
                model = _with_adapter(model, adapter, merge=quantization == "none")
            model.eval()
            loaded = wanted
        info: dict[str, Any] = {"model": model_id, "dtype": dtype, "device": device}
        if variant == "kshot":
            info["shots"] = shot_indices  # positions in data/train.jsonl
        elif variant == "finetuned":
            info["adapter"] = "adapter"
        name = plan.out_name(variant)
        _log(events, f"eval {name}: {len(examples)} held-out examples on {device}")
        scored = _eval_variant(run, name, model, tokenizer, prompts[variant], examples, task=task,
                               template=template, settings=settings, stopping=stopping, info=info,
                               report=EvalProgressReporter(events, name, len(examples)))
        if scored is None:
            _log(events, f"eval {name}: stopped before the end; no metrics written for it")
            break
        records, metrics = scored
        results[name] = dict(metrics)
        if events is not None:
            events.write("eval", variant=name, n=len(records), metrics=dict(metrics))
    model = None
    _free_memory()
    return results


def _eval_variant(run: Run, variant: str, model: Any, tokenizer: Any, prompts: Sequence[Sequence[dict]],
                  examples: Sequence[Example], *, task: Task, template: PromptTemplate,
                  settings: EvalSettings, stopping: Callable[[], bool], info: dict[str, Any],
                  report: EvalProgressReporter) -> tuple[list[PredictionRecord], dict[str, float]] | None:
    """Generate, score and write one variant; None when a stop request came first."""

    def progress(done: int, total: int) -> None:
        report(done)
        if done < total and stopping():  # after the last batch the variant is done: keep it
            raise _Stopped

    report.start()
    began = time.perf_counter()
    try:
        outputs = generate_batched(model, tokenizer, prompts, max_new_tokens=settings.max_new_tokens,
                                   batch_size=settings.batch_size, on_progress=progress)
    except _Stopped:
        return None
    duration = time.perf_counter() - began
    records, metrics = score_examples(
        task, examples, [text for text, _ in outputs],
        inputs=[render_user(ex, template) for ex in examples],
        latencies=[round(latency, 4) for _, latency in outputs],
    )
    write_eval(run.dir, variant, records, metrics, **info, duration_s=round(duration, 3),
               examples_per_s=round(len(examples) / duration, 3) if duration > 0 else None,
               max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size)
    return records, metrics


def _with_adapter(model: Any, adapter: Any, *, merge: bool) -> Any:
    import peft  # heavy: only for the fine-tuned variant

    tuned = peft.PeftModel.from_pretrained(model, str(adapter))
    # Merging folds the LoRA product into the base weights: one matmul per layer instead of
    # three. Quantized bases stay unmerged (merging into 4/8-bit weights re-rounds them).
    return tuned.merge_and_unload() if merge else tuned


def _default_device() -> str:
    import torch  # heavy: device detection

    return "cuda" if torch.cuda.is_available() else "cpu"


def _free_memory() -> None:
    import torch  # heavy: releasing cached GPU memory

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _log(events: EventWriter | None, message: str) -> None:
    if events is not None:
        events.write("log", level="info", message=message)
