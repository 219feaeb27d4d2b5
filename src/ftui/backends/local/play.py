"""The local backend's Playground: one prompt at a time, token by token, models kept loaded.

One base model is loaded, and the run's adapter goes on it unmerged (peft): the fine-tuned
variant runs with the adapter, base and k-shot inside ``disable_adapter()``, so the weights are
in memory once. Full fine-tuning saved a whole model (``model/``): it is loaded beside the base.
Decoding is eval's: float32, greedy, the same chat template and stop tokens
(``generate.prompt_token_ids``, ``stop_token_ids``), and prefix tuning's virtual tokens as a
filled cache (``generate._Decoder``; peft's own ``generate`` drops them, see generate.py). The
adapter stays unmerged here, where eval merges it: the same products summed in another order,
so the tokens agree in float32 (see generate.py on rounding).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from typing import Any, Callable, Iterator, Sequence

from ftui.backends.local.generate import _cache_of, _Decoder, _plain_dynamic, _shared_prefix, prompt_token_ids
from ftui.backends.local.models import load_model, load_tokenizer
from ftui.core.runs import Run


class LocalPlayer:
    """The base model (with the run's adapter, unmerged, where it has one) and the tokenizer."""

    def __init__(self, run: Run, *, device: str | None = None, dtype: str = "float32") -> None:
        from ftui.backends.local.evaluate import _default_device

        weights = run.trained_weights()
        began = time.perf_counter()
        # heavy: imported here, and timed apart from loading the weights (the screen shows both)
        adapter = weights is not None and weights != run.model_path
        for module in ("torch", "transformers", *(("peft",) if adapter else ())):
            importlib.import_module(module)
        import transformers

        transformers.AutoModelForCausalLM, transformers.AutoTokenizer  # noqa: B018 - lazy modules load here
        self.import_s = time.perf_counter() - began
        """Seconds spent importing the libraries (the rest of ``__init__`` loads weights)."""
        self.device = device or _default_device()
        self.dtype = dtype
        if self.device == "cpu":
            import torch

            torch.set_num_threads(cpu_threads(os.cpu_count() or 1))
        spec = run.spec
        quantization = spec.hyperparameters.quantization
        self.tokenizer = load_tokenizer(spec.model)
        self.model: Any = load_model(spec.model, dtype=dtype, quantization=quantization, device=self.device).eval()
        self.tuned: Any = None  # a whole fine-tuned model (method=full), else None
        self.adapter = False
        if weights is not None and weights == run.model_path:
            self.tuned = load_model(str(weights), dtype=dtype, quantization=quantization, device=self.device).eval()
        elif weights is not None:
            import peft  # heavy: only for a run with an adapter

            self.model = peft.PeftModel.from_pretrained(self.model, str(weights)).eval()
            self.adapter = True
        self.variants: tuple[str, ...] = ("base", "kshot") + (("finetuned",) if weights is not None else ())
        self.last: dict[str, Reuse] = {v: Reuse() for v in self.variants}
        """Each variant's last prompt and cache: the next prompt's shared beginning (system
        message, shots, tables) is not computed again."""

    def describe(self) -> str:
        how = "adapter unmerged" if self.adapter else ("whole model" if self.tuned is not None else "base only")
        return f"{self.device}, {self.dtype}, {how}"

    def stream(self, variant: str, prompt: Sequence[dict], *, max_new_tokens: int,
               should_stop: Callable[[], bool]) -> Iterator[str]:
        if variant not in self.variants:
            raise ValueError(f"unknown variant {variant!r}; this run has {', '.join(self.variants)}")
        with self._weights(variant) as model:
            yield from stream_greedy(model, self.tokenizer, prompt, max_new_tokens=max_new_tokens,
                                     should_stop=should_stop, reuse=self.last[variant])

    @contextlib.contextmanager
    def _weights(self, variant: str) -> Iterator[Any]:
        if variant == "finetuned":
            yield self.tuned if self.tuned is not None else self.model
        elif self.adapter:
            # The plain transformers model under the wrapper, adapter layers switched off (prefix
            # tuning: the wrapper's virtual tokens are not used either).
            with self.model.disable_adapter():
                yield self.model.get_base_model()
        else:
            yield self.model

    def close(self) -> None:
        self.model = self.tuned = None


def cpu_threads(cores: int) -> int:
    """Threads for decoding one row on the CPU: half the cores, at least one.

    One row is bound by reading the weights, where a second thread adds little; and when the
    cores are shared (the TUI itself, a run training beside it) torch's threads wait for each
    other at every operation. Measured on 2 shared cores (load ~8), the embedded model: 117 ms a
    token with one thread, 317 ms with two (first token 0.26 s against 1.0 s).
    """
    return max(1, cores // 2)


class Reuse:
    """The last prompt's token ids and the cache its answer left (prompt and answer)."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.cache: Any = None

    def take(self, ids: Sequence[int], virtual: int) -> tuple[int, Any]:
        """(tokens of ``ids`` already in the returned cache, the cache), cut to that shared
        beginning; (0, None) when nothing can be reused. The cache is handed over, not copied."""
        cache, self.cache = self.cache, None
        if cache is None or not _plain_dynamic(cache) or not self.ids:
            return 0, None
        shared = _shared_prefix([self.ids, ids])
        if shared < 1:
            return 0, None
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[:, :, :virtual + shared], layer.values[:, :, :virtual + shared]
        return shared, cache

    def keep(self, ids: Sequence[int], cache: Any) -> None:
        self.ids, self.cache = list(ids), cache


def stream_greedy(model: Any, tokenizer: Any, prompt: Sequence[dict], *, max_new_tokens: int,
                  should_stop: Callable[[], bool] = lambda: False, reuse: Reuse | None = None) -> Iterator[str]:
    """The answer so far (as eval's ``_Decoder.text`` gives it) after each new token.

    A per-token loop over the model's forward with a KV cache, taking the argmax as eval does;
    a model whose generation config asks for more than plain greedy goes through ``generate``
    and is given whole. ``reuse``: the cache of the previous prompt, whose shared beginning is
    not computed again (the same keys and values: positions and masks are the same)."""
    import torch  # heavy: only when generating

    decoder = _Decoder(model, tokenizer, max_new_tokens)
    (ids,) = prompt_token_ids(tokenizer, [prompt])
    if not decoder.plain_greedy:
        (tokens,) = decoder.generate([ids])
        yield decoder.text(tokens)
        return
    virtual = decoder.virtual
    with torch.inference_mode():
        done, cache = reuse.take(ids, virtual) if reuse is not None else (0, None)
        if cache is None:
            cache = decoder.virtual_cache(1) if virtual else None
        input_ids = torch.tensor([ids[done:]], dtype=torch.long, device=decoder.device)
        mask = input_ids.new_ones((1, virtual + len(ids)))
        positions = virtual + torch.arange(done, len(ids), device=decoder.device)[None]
        tokens: list[int] = []
        while len(tokens) < max_new_tokens and not should_stop():
            out = decoder.forward(input_ids, mask, positions, cache)
            cache = _cache_of(out)
            if reuse is not None and not tokens:
                reuse.keep(ids, cache)  # the prompt is in the cache now, whatever happens next
            token = int(out.logits[0, -1, :].float().argmax())
            if token in decoder.stops:
                break
            tokens.append(token)
            yield decoder.text(tokens)
            input_ids = input_ids.new_tensor([[token]])
            mask = torch.cat([mask, mask.new_ones((1, 1))], dim=-1)
            positions = positions[:, -1:] + 1
