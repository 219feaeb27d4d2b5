"""The local backend's answers for evaluation: batched greedy decoding on the base model, the
base with k-shot prompts, and the run's trained weights (``finetuned``): the base with the
run's adapter (merged in where the method allows), or the whole model full fine-tuning saved.

The loop around it (stop checks, progress, scoring, records, events) is the shared one in
``ftui.backends.evaluate``; ``evaluate_run`` here runs it with this backend.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any, Callable, Sequence

from ftui.backends.base import Answer, Answered
from ftui.backends.local.generate import generate_batched
from ftui.backends.local.models import load_model, load_tokenizer
from ftui.core.errors import ConfigError
from ftui.core.evalplan import EvalPlan, choose_shots  # noqa: F401 - choose_shots re-exported (tests, benchmarks)
from ftui.core.events import EventWriter
from ftui.core.runs import Run
from ftui.core.scoring import VARIANTS


class _Stopped(Exception):
    """Raised from the progress callback when ``should_stop()`` says so; never escapes."""


TOGETHER = ("base", "kshot")
"""Variants of one model whose prompts decode in one running batch when both are asked for."""


class LocalAnswerer:
    """One model in memory at a time: the base for ``base`` and ``kshot`` (loaded once for
    both), then the trained weights for ``finetuned``.

    ``base`` and ``kshot`` decode together, in one running batch of up to ``eval.batch_size``
    rows, each variant's shared prompt beginning kept once (``generate_batched``'s groups): on
    2 CPU cores a decoding step's matrix products cost 1.9 ms a row with 64 rows against 2.5 ms
    with 32, and the rows of one variant's last, longest outputs decode beside the other's
    rather than alone. The first of the two asked for gets both; the other's answers wait for
    its turn (``Answered.seconds``: each its own share of the time).
    """

    def __init__(self, run: Run, plan: EvalPlan, *, device: str | None = None, dtype: str = "float32",
                 variants: Sequence[str] = ()) -> None:
        self.run, self.plan = run, plan
        self.together = [v for v in TOGETHER if v in variants]
        self.waiting: dict[str, list[tuple[str, float]]] = {}  # answers decoded ahead of their turn
        self.model_id = run.spec.model
        self.quantization = run.spec.hyperparameters.quantization
        self.device = device or _default_device()
        # float32 by default, so batched outputs equal one-at-a-time ones (see generate).
        self.dtype = dtype
        self.tokenizer = load_tokenizer(self.model_id)
        self.model: Any = None
        self.loaded: str | None = None  # which weights `model` holds: "base" or "finetuned"
        self.weights: Path | None = None  # the run's trained weights, once `finetuned` loaded

    def describe(self, variant: str) -> str:
        return f"on {self.device}"

    def answer(self, variant: str, prompts: Sequence[Sequence[dict]], *, on_progress: Callable[[int], None],
               should_stop: Callable[[], bool]) -> Answered | None:
        settings = self.plan.settings
        info: dict[str, Any] = {"model": self.model_id, "dtype": self.dtype, "device": self.device,
                                "batch_size": settings.batch_size}
        if variant in self.waiting:  # decoded with the variant before it
            outputs = self.waiting.pop(variant)
            on_progress(len(outputs))
            info["decoded_with"] = [v for v in self.together if v != variant]
            return Answered([Answer(text, latency) for text, latency in outputs], info,
                            seconds=sum(latency for _, latency in outputs))
        self._load("finetuned" if variant == "finetuned" else "base")
        others = [v for v in self.together if v != variant] if variant in self.together else []
        groups = [prompts] + [self.plan.prompts(v) for v in others]
        everything = [p for group in groups for p in group]
        share = len(prompts) / len(everything)

        def progress(done: int, total: int) -> None:
            on_progress(min(len(prompts), int(done * share)))
            if done < total and should_stop():  # after the last batch the variant is done: keep it
                raise _Stopped

        try:
            outputs = generate_batched(self.model, self.tokenizer, everything, max_new_tokens=settings.max_new_tokens,
                                       batch_size=settings.batch_size, on_progress=progress,
                                       groups=[n for n, group in enumerate(groups) for _ in group])
        except _Stopped:
            return None
        at = len(prompts)
        for other, group in zip(others, groups[1:]):
            self.waiting[other], at = outputs[at:at + len(group)], at + len(group)
        if variant == "finetuned" and self.weights is not None:
            info["adapter"] = self.weights.name  # "adapter" or "model", in the run's folder
        mine = outputs[:len(prompts)]
        if not others:
            return Answered([Answer(text, latency) for text, latency in mine], info)
        info["decoded_with"] = others
        return Answered([Answer(text, latency) for text, latency in mine], info,
                        seconds=sum(latency for _, latency in mine))

    def after(self, variant: str, answered: Answered, events: EventWriter | None) -> None:
        from ftui.backends.local.export import refresh_card

        try:
            refresh_card(self.run)  # the card's eval table now has this variant
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a convenience: never fail an eval over it
            if events is not None:
                events.write("log", level="warning", message=f"could not update the model card: {exc}")

    def close(self) -> None:
        self.model = None
        _free_memory()

    def _load(self, wanted: str) -> None:
        if self.loaded == wanted:
            return
        weights = None
        if wanted == "finetuned":
            weights = self.run.trained_weights()
            if weights is None:
                raise ConfigError(_no_weights(self.run))
        self.model = None
        _free_memory()  # the previous model goes before the next one loads
        if weights == self.run.model_path:  # full fine-tuning saved the whole model
            model = load_model(str(weights), dtype=self.dtype, quantization=self.quantization, device=self.device)
        else:
            model = load_model(self.model_id, dtype=self.dtype, quantization=self.quantization, device=self.device)
            if weights is not None:
                model = _with_adapter(model, weights, merge=self.quantization == "none")
        model.eval()
        self.model, self.loaded, self.weights = model, wanted, weights


def answerer(run: Run, plan: EvalPlan, variants: Sequence[str], **kw: Any) -> LocalAnswerer:
    if "finetuned" in variants and run.trained_weights() is None:
        # Checked before any work, so nobody waits through base and k-shot to learn this.
        raise ConfigError(_no_weights(run))
    return LocalAnswerer(run, plan, variants=variants, **kw)


def evaluate_run(run: Run, *, variants: Sequence[str] = VARIANTS, limit: int | None = None,
                 events: EventWriter | None = None, should_stop: Callable[[], bool] | None = None,
                 heldout: str = "") -> dict[str, dict[str, float]]:
    """The shared evaluation loop with this backend (see ``ftui.backends.evaluate``)."""
    from ftui.backends.evaluate import evaluate_run as shared
    from ftui.backends.local import BACKEND

    return shared(run, BACKEND, variants=variants, limit=limit, events=events, should_stop=should_stop,
                  heldout=heldout)


def _no_weights(run: Run) -> str:
    return f"run {run.id} has no trained weights yet (adapter/ or model/): train it first (or resume it)"


def _with_adapter(model: Any, adapter: Any, *, merge: bool) -> Any:
    """The base with the peft adapter in folder ``adapter``, merged into its weights if ``merge``
    and the method has weights to fold (LoRA, DoRA, IA3; not prefix tuning)."""
    import peft  # heavy: only for the fine-tuned variant

    tuned = peft.PeftModel.from_pretrained(model, str(adapter))
    # Merging folds the adapter into the base weights: for LoRA one matmul per layer instead of
    # three; DoRA's magnitudes and IA3's scales fold in as well. Quantized bases stay unmerged
    # (merging into 4/8-bit weights re-rounds them). Prefix tuning adds key/value positions,
    # not weights: it stays a peft model, which the generator runs with its virtual tokens.
    if not merge or tuned.active_peft_config.is_prompt_learning:
        return tuned
    return tuned.merge_and_unload()


def _default_device() -> str:
    import torch  # heavy: device detection

    return "cuda" if torch.cuda.is_available() else "cpu"


def _free_memory() -> None:
    import torch  # heavy: releasing cached GPU memory

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
