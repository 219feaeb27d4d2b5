"""Greedy generation for eval: batched and one at a time.

Both functions take chat prompts (lists of ``{"role", "content"}``), apply the tokenizer's
chat template with the generation prompt, decode greedily until the end of the turn and
return ``(output, latency_s)`` per prompt in the order given.

One at a time is plain ``model.generate``, one prompt per call: the baseline. Batched is ftui's
own greedy loop over the model's forward with a KV cache (``_Stream``); it gives the same
tokens and does less work than ``generate`` on a batch, where most of the time went
(measured on the demo's held-out split, 2 CPU cores, the embedded model):

- ``generate`` keeps every row of a batch until the longest is done, and the base model often
  runs on to ``max_new_tokens``: a third of the decoding steps were spent on finished rows.
  Here a row leaves as soon as it emits a stop token, and a waiting prompt takes its place
  (up to ``batch_size`` rows decode together, the memory bound the setting promises).
- The prompts begin alike (system message and template: 40% of a demo prompt; with k=2
  shots 84%). That shared beginning goes through the model once; its keys and values are
  copied to the rows of each prefill, and then kept once: every decoding step's attention
  reads them once for all the rows rather than a copy per row (``kv_cache``: with k-shot
  prompts and 32 rows the copies were more bytes than the weights).
- The running batch's keys and values are in preallocated buffers: a step writes its position
  in place (``kv_cache``), where transformers' cache copied the whole cache with ``torch.cat``
  every step. They are copied only when rows join, and every ``KV_HEADROOM`` steps; when rows
  leave, the last rows move into their places (a copy of the moved rows only: selecting the rows
  still going copied all of them, ~90 ms each time a k-shot row finished in a batch of 32).
  With both (16 k-shot demo prompts, 16 new tokens, on a shared 2-core machine, so indicative)
  a decoding step of 16 rows took 163 ms against 185 ms, the cache's writes 0.02 s against
  0.36 s over the 15 steps. ``benchmarks/eval_throughput.py --quick`` alone, before and after:
  5.62x and 6.71x one-at-a-time (2.25 and 2.71 examples/s), outputs identical.
- Decoding reads the weights once per step whatever the rows, and for the few rows of a step
  MKL's kernel for ``x @ W.T`` is the slow one: ``(W @ x.T).T`` (the same products through its
  other kernel) streams the weights faster, twice as fast with 2 to 5 rows, and 10-20% faster
  with 8 to 64 (a decoding step of 32 k-shot rows 156 ms against 188 ms, medians of six,
  AMD EPYC, torch 2.13). That kernel is fast only for a multiple of ``ROW_TILE`` rows, though
  (the embedded model's Linear layers: 59 ms with 32 rows, 99 ms with 31; 160 ms with 128, 205
  with 127; ``x @ W.T`` 76 and 175 ms), so more than ``ROW_TILE`` rows are padded with zeros up
  to one. CPU float32 linears of 2 to ``FEW_ROWS`` rows go that way (``_few_rows_linears``);
  prefill, hundreds of rows, keeps the plain kernel.
- Prompts are sorted by length, longest first (an out-of-memory error shows up at once rather
  than at the end). When the attention reads the shared beginning once, the prompts' own tokens
  prefill packed, one sequence after the beginning (``_Stream._join_packed``: no padding, no
  copy of the beginning per row; the joins of 64 demo prompts 5.4-6.6 s against 6.8-7.4 s
  padded); otherwise in groups that balance padding against the cost of another forward.
- Prompts rendered several ways (eval's base and k-shot variants) decode in one running batch
  (``groups``): each group's shared beginning is kept once, one after the other in the prefix
  the attention reads, each row reading its own group's (``kv_cache.PrefixRows``). More rows a
  step: its matrix products cost 2.5 ms a row with 32 rows, 1.9 ms with 64, 1.65 ms with 128.

Models whose generation config asks for more than plain greedy (a repetition penalty, banned
words, ...) go through ``generate`` in the batched path too, in length-sorted batches.

A prefix-tuned model (a peft adapter, unmerged: nothing to fold into the weights) puts the
keys and values of ``num_virtual_tokens`` learned positions before every prompt, in every
layer. Both paths run the base model on a cache that starts with them: the loop treats them
as the part of the shared beginning every row already has, ``generate`` continues from them
as a filled cache. Every mask counts them, and positions count from them, as peft's forward
does in training (the first prompt token is at position ``num_virtual_tokens``). peft's own
``generate`` is not used: with transformers 5 it loses the virtual tokens (its inputs set
``past_key_values``, and the ``cache`` that ``generate`` passes wins), giving the base
model's tokens.

Batched and one-at-a-time decoding give the same tokens in float32: left padding with an
attention mask keeps every real token at the same position id (counted from the mask, as
``generate`` does), masked keys get zero attention weight, and rows joining a running batch
or sharing a prefix see exactly the keys they would see alone. What still changes is the last
bits of each matmul (kernels block by shape) and of the attention over a shared prefix (the
same sums in another order; a one-row step both ways checks, before a run, that the model's
attention goes through it and gives the same logits); in float32 that is far below the gap between
the top two logits, which is why the runner evaluates in float32. Checked on the embedded
model: the 100 demo test prompts, base and k-shot, identical 200/200 (benchmarks/eval_throughput.py
checks it on every run). In bfloat16 the same noise flips near-ties: 7 of 16 demo prompts
differed, and 1 of 16 even in a batch of identical, unpadded prompts, so it is rounding, not
padding.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import time
import types
from collections import deque
from typing import Any, Callable, Iterator, Sequence

Prompt = Sequence[dict]
Progress = Callable[[int, int], None]

END_OF_TURN = "<|im_end|>"
"""ChatML's end of turn (SmolLM2, Qwen): a stop token even where it is not the eos token."""

MIN_SHARED_TOKENS = 128
"""Share the prompts' common beginning when that saves at least this many tokens of prefill
(the extra forward for the shared part costs about as much as a decoding step)."""
FEW_ROWS = 128
"""Up to this many rows, CPU float32 linears compute ``(W @ x.T).T`` (see the module docstring)."""
ROW_TILE = 8
"""... with more rows than this padded with zeros to a multiple of it (fewer run as they are:
2 rows 15 ms, 5 rows 25 ms, 8 rows 33 ms through the embedded model's Linear layers)."""
WIDE_LAYER = 8192
"""Output features from which a Linear counts as the vocabulary projection."""
KV_HEADROOM = 64
"""Positions the running batch's keys and values have room for after their last, so that a
decoding step writes its own in place (``kv_cache``) rather than copying the whole cache; the
buffers are copied again when this room runs out, and when rows leave or join."""
PREFILL_FORWARD_TOKENS = 32
"""What one more prefill forward costs, in tokens of prefill work (reading the weights once:
~60 ms on 2 CPU cores against ~2 ms a token for the embedded model)."""

PROGRESS_EVERY = 16
"""Examples done between two progress reports (and stop checks) at most, whatever the batch size."""
PACK_TOKENS = 4096
"""Most prompt tokens of one packed prefill forward (``_Stream._join_packed``): its activations
are this many positions, as a training batch's; more prompts take several forwards."""

_GREEDY_NEUTRAL: dict[str, Any] = {
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0), "encoder_no_repeat_ngram_size": (None, 0),
    "min_length": (None, 0), "min_new_tokens": (None, 0), "num_beams": (None, 1),
    "num_return_sequences": (None, 1), "renormalize_logits": (None, False),
    "remove_invalid_values": (None, False), "guidance_scale": (None, 1.0),
    "output_attentions": (None, False), "output_hidden_states": (None, False), "output_scores": (None, False),
    "output_logits": (None, False), "return_dict_in_generate": (None, False),
}
"""Generation-config fields whose listed values leave greedy decoding a plain argmax."""
_GREEDY_IGNORED = {
    "bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "max_length",
    "max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "min_p", "top_h", "typical_p",
    "epsilon_cutoff", "eta_cutoff", "use_cache", "cache_implementation", "transformers_version",
    "_from_model_config", "early_stopping", "length_penalty",
}
"""Fields that do not change greedy tokens (sampling settings, lengths we set ourselves)."""


def prompt_token_ids(tokenizer: Any, prompts: Sequence[Prompt]) -> list[list[int]]:
    """Token ids of each prompt through the chat template, ending with the assistant's header."""
    texts = [tokenizer.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True)
             for p in prompts]
    # The template already writes any BOS it wants; adding special tokens again would double it.
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The eos id, plus ``<|im_end|>`` when the vocabulary has it."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    end = tokenizer.get_vocab().get(END_OF_TURN)
    if end is not None and end not in ids:
        ids.append(end)
    if not ids:
        raise ValueError("the tokenizer has no eos token and no <|im_end|>: generation would not stop")
    return ids


def generate_batched(model: Any, tokenizer: Any, prompts: Sequence[Prompt], *, max_new_tokens: int,
                     batch_size: int = 16, on_progress: Progress | None = None,
                     groups: Sequence[int] | None = None) -> list[tuple[str, float]]:
    """Greedy outputs with each example's share of the wall time, in input order.

    At most ``batch_size`` prompts decode together. ``on_progress(done, total)`` runs each time
    another ``batch_size`` examples are done (``PROGRESS_EVERY`` at most), and after the last; it
    may raise to stop early.
    ``groups``: a label per prompt, for prompts rendered several ways (eval's base and k-shot
    variants) that decode together: each group's shared beginning is found and kept once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not prompts:
        return []
    if groups is not None and len(groups) != len(prompts):
        raise ValueError(f"groups: one label per prompt, got {len(groups)} for {len(prompts)} prompts")
    ids = prompt_token_ids(tokenizer, prompts)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # longest first (stable)
    results: list[tuple[str, float] | None] = [None] * len(ids)
    decoder = _Decoder(model, tokenizer, max_new_tokens)
    reported, every = 0, min(batch_size, PROGRESS_EVERY)

    def finished(i: int, tokens: list[int], seconds: float) -> None:
        nonlocal reported
        results[i] = (decoder.text(tokens), seconds)
        done = len(ids) - results.count(None)
        if on_progress is not None and (done // every > reported or done == len(ids)):
            reported = done // every
            on_progress(done, len(ids))

    if decoder.plain_greedy:
        with _few_rows_linears(model):
            _Stream(decoder, ids, order, batch_size, finished, groups).run()
    else:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            began = time.perf_counter()
            outputs = decoder.generate([ids[i] for i in chunk])
            share = (time.perf_counter() - began) / len(chunk)
            for i, tokens in zip(chunk, outputs):
                finished(i, tokens, share)
    return [r for r in results if r is not None]


def generate_one_at_a_time(model: Any, tokenizer: Any, prompts: Sequence[Prompt], *,
                           max_new_tokens: int,
                           on_progress: Progress | None = None) -> list[tuple[str, float]]:
    """One prompt per ``generate`` call, no padding: the baseline that batching must match."""
    if not prompts:
        return []
    decoder = _Decoder(model, tokenizer, max_new_tokens)
    results = []
    for n, ids in enumerate(prompt_token_ids(tokenizer, prompts), start=1):
        began = time.perf_counter()
        (tokens,) = decoder.generate([ids])
        results.append((decoder.text(tokens), time.perf_counter() - began))
        if on_progress is not None:
            on_progress(n, len(prompts))
    return results


class _Decoder:
    """What both paths share: the stop tokens, padding, the forward call, ``generate``."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int) -> None:
        import transformers  # heavy: only when generating

        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        stops = stop_token_ids(tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
        self.pad, self.stops = pad, set(stops)
        # generate() fills this config's unset fields from the model's generation_config, whose
        # sampling settings (hub models often ship a temperature or top_p) would make greedy
        # decoding warn on every call: pin them to their neutral values.
        self.config = transformers.GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            temperature=1.0, top_p=1.0, top_k=50, eos_token_id=stops, pad_token_id=pad,
        )
        self.virtual = _virtual_tokens(model)
        # The module whose forward and generate run: the base model under prefix tuning, which
        # gets the virtual tokens as a cache (peft's forward would replace any cache given).
        self.net = _base_model(model) if self.virtual else model
        self.plain_greedy = _plain_greedy(model) and _loop_can_run(self, model)
        forward = getattr(_base_model(model), "forward", None)
        params = set(inspect.signature(forward).parameters) if forward is not None else set()
        # transformers 5.x names the KV cache argument `cache`; earlier versions `past_key_values`.
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.last_logits_only = "logits_to_keep" in params
        self.device = next(model.parameters()).device

    def padded(self, batch: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        """Left-padded input ids and their attention mask."""
        import torch  # heavy: only when generating

        # Padding by hand (left, for decoder-only generation) leaves the tokenizer untouched.
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            if ids:
                input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
                attention_mask[row, width - len(ids):] = 1
        return input_ids.to(self.device), attention_mask.to(self.device)

    def virtual_cache(self, rows: int) -> Any:
        """A fresh cache holding the prefix tuning's virtual tokens for ``rows`` rows."""
        return self.model.get_prompt(rows)

    def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, cache: Any,
                logits_to_keep: Any = 1) -> Any:
        """The model's forward; under prefix tuning ``cache`` starts with the virtual tokens, and
        the mask and positions count them. Logits of the last position (or of the positions
        ``logits_to_keep``, a tensor), where the model can leave out the others."""
        extra = {"logits_to_keep": logits_to_keep} if self.last_logits_only else {}
        return self.net(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        use_cache=True, **{self.cache_arg: cache}, **extra)

    def generate(self, batch: Sequence[Sequence[int]]) -> list[list[int]]:
        """New tokens of each row through ``model.generate``, up to (not including) the stop."""
        import torch  # heavy: only when generating

        input_ids, attention_mask = self.padded(batch)
        with torch.inference_mode():
            extra = {}
            if self.virtual:
                # The virtual tokens come as a filled cache. Their places in input_ids (padding)
                # are the cached part that generate skips; the mask's ones there make its
                # positions start after them, as in training. (A repetition penalty sees that
                # padding, as it sees a batch's left padding.)
                rows = len(batch)
                input_ids = torch.cat([input_ids.new_full((rows, self.virtual), self.pad), input_ids], dim=-1)
                attention_mask = torch.cat([attention_mask.new_ones((rows, self.virtual)), attention_mask], dim=-1)
                extra = {self.cache_arg: self.virtual_cache(rows)}
            out = self.net.generate(input_ids=input_ids, attention_mask=attention_mask,
                                    generation_config=self.config, **extra)
        return [self._until_stop(tokens) for tokens in out[:, input_ids.shape[1]:].tolist()]

    def text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True).strip()

    def _until_stop(self, tokens: list[int]) -> list[int]:
        # Finished rows are filled with pad up to the batch's longest; the pad token need not
        # be special, so cut at the first stop token rather than trusting skip_special_tokens.
        for n, token in enumerate(tokens):
            if token in self.stops:
                return tokens[:n]
        return tokens


class _Stream:
    """ftui's greedy loop: up to ``batch_size`` rows decode together; a finished row leaves at
    once and waiting prompts join the running batch.

    Every row's argmax is the one ``generate`` takes (float32 logits of the last position).
    Rows join in groups (a quarter of ``batch_size`` at least, so a prefill forward is not spent
    on one prompt at a time), the prompts of a prefill all of one group (``groups``): they go
    through the model after their group's shared beginning (packed when the attention reads
    that once, ``share_attention``; else padded, the beginning copied from the cache), and their
    keys and values (past the shared beginning, when it is read once) are appended to the
    running batch's, both left-padded to one length. Caches that cannot be cut and joined (sliding-window and other
    special layers) fall back to whole batches, with finished rows carried along as
    ``generate`` does.
    """

    def __init__(self, decoder: _Decoder, ids: Sequence[Sequence[int]], order: Sequence[int],
                 batch_size: int, finished: Callable[[int, list[int], float], None],
                 groups: Sequence[int] | None = None) -> None:
        self.d, self.ids, self.batch_size, self.finished = decoder, ids, batch_size, finished
        self.queue = deque(order)
        # Each prompt's group: prompts of one group share their beginning (see generate_batched).
        self.group_of: Sequence[int] = groups if groups is not None else [0] * len(ids)
        self.rows: list[int] = []  # batch position -> prompt index, for the rows decoding
        self.outputs: dict[int, list[int]] = {}
        self.seconds: dict[int, float] = {}
        self.cache: Any = None
        self.attention_mask: Any = None
        self.position_ids: Any = None
        self.next_tokens: Any = None
        self.joinable = True  # rows can leave and join; set from the first cache seen
        # Per group, the cache its rows start from: the virtual tokens (prefix tuning), then the
        # group's shared beginning (``shared[group]`` tokens of each prompt); None when neither.
        self.shared: dict[int, int] = {}
        self.prefix_cache: dict[int, Any] = {}
        # Whether the rows keep only their own positions, the model's attention reading the prefix
        # caches once for all of them (kv_cache.shared_prefix_attention); decided in run().
        self.share_attention = False
        self.prefix: Any = None  # then: each layer's SharedPrefix, every group's beginning in turn
        self.prefix_rows: Any = None  # and which of its positions each row reads (several groups)
        self.spans: dict[int, tuple[int, int]] = {}  # group -> its positions in the prefix

    def run(self) -> None:
        import torch  # heavy: only when generating

        from ftui.backends.local.kv_cache import attention_over_shared_prefix  # heavy: imports transformers

        with torch.inference_mode(), attention_over_shared_prefix(_base_model(self.d.model).config) as can_share:
            for group in sorted(set(self.group_of[i] for i in self.queue)):
                self._share_prefix(group)
            probe = next((g for g, cache in self.prefix_cache.items() if cache is not None), None)
            self.share_attention = can_share and probe is not None and self._shared_attention_reads(probe)
            if self.share_attention:
                self._shared_prefix()
            self._decode()

    def _shared_prefix(self) -> None:
        """The prefix the attention reads once for all the rows: every group's beginning, one after
        the other; with several groups, each row reads its own group's positions only."""
        from ftui.backends.local.kv_cache import PrefixRows, shared_prefixes  # heavy: imports transformers

        caches, at = [], 0
        for group, cache in sorted(self.prefix_cache.items()):
            length = cache.get_seq_length() if cache is not None else 0
            self.spans[group] = (at, at + length)
            at += length
            if cache is not None:
                caches.append(cache)
        self.prefix_rows = PrefixRows() if len(self.prefix_cache) > 1 else None
        self.prefix = shared_prefixes(caches, self.prefix_rows)

    def _prefix_mask(self, prompts: Sequence[int]) -> Any:
        """Which prefix positions the rows of ``prompts`` read: their group's."""
        import torch  # heavy: only when generating

        width = max(end for _, end in self.spans.values())
        mask = torch.zeros((len(prompts), width), dtype=torch.bool, device=self.d.device)
        for row, i in enumerate(prompts):
            start, end = self.spans[self.group_of[i]]
            mask[row, start:end] = True
        return mask

    def _decode(self) -> None:
        """Prefill and decode until every prompt is done (inside ``run``'s settings)."""
        while self.queue or self.rows:
            free = self.batch_size - len(self.rows)
            if self.queue and (not self.rows or (
                    self.joinable and free >= min(len(self.queue), max(1, self.batch_size // 4)))):
                joining = [self.queue.popleft() for _ in range(min(free, len(self.queue)))]
                for kind in sorted(set(self.group_of[i] for i in joining)):  # a prefill is of one group
                    alike = [i for i in joining if self.group_of[i] == kind]
                    if self.share_attention:
                        for group in _packs([len(self.ids[i]) - self.shared[kind] for i in alike]):
                            self._join_packed([alike[at] for at in group])
                        continue
                    for group in _prefill_groups([len(self.ids[i]) - self.shared[kind] for i in alike]):
                        self._join([alike[at] for at in group])
            if self.rows:
                self._step()

    def _share_prefix(self, group: int) -> None:
        """``group``'s prefix cache: the virtual tokens, then its prompts' shared beginning when
        sharing it saves enough prefill."""
        virtual = self.d.virtual
        self.shared[group], self.prefix_cache[group] = 0, self.d.virtual_cache(1) if virtual else None
        prompts = [self.ids[i] for i in self.queue if self.group_of[i] == group]
        shared = _shared_prefix(prompts)
        if len(prompts) < 2 or (len(prompts) - 1) * shared < MIN_SHARED_TOKENS:
            return
        import torch  # heavy: only when generating

        ids = torch.tensor([list(prompts[0][:shared])], dtype=torch.long, device=self.d.device)
        mask = ids.new_ones((1, virtual + shared))
        positions = virtual + torch.arange(shared, device=ids.device)[None]
        out = self.d.forward(ids, mask, positions, self.d.virtual_cache(1) if virtual else None)
        cache = _cache_of(out)
        if _plain_dynamic(cache):  # a sliding-window or other special cache: nothing to copy
            self.shared[group], self.prefix_cache[group] = shared, cache

    def _shared_attention_reads(self, group: int) -> bool:
        """Whether the model's attention reads a ``SharedPrefixLayer``'s prefix as it reads a whole
        row: one decoding step of ``group``'s first prompt both ways, every layer through
        ``shared_prefix_attention`` and the same logits (but for the last bits)."""
        import torch  # heavy: only when generating

        from ftui.backends.local.kv_cache import preallocate, shared_prefixes  # heavy: imports transformers

        prefix_cache, shared = self.prefix_cache[group], self.shared[group]
        first = next(i for i in self.queue if self.group_of[i] == group)
        cached = self.d.virtual + shared
        token = torch.tensor([[self.ids[first][shared]]], dtype=torch.long, device=self.d.device)
        mask, position = token.new_ones((1, cached + 1)), token.new_full((1, 1), cached)
        whole = self.d.forward(token, mask, position, copy.deepcopy(prefix_cache)).logits[:, -1].float()
        cache = copy.deepcopy(prefix_cache)
        preallocate(cache, headroom=1, prefix=shared_prefixes([prefix_cache]), skip=cached)  # no own position yet
        shared = self.d.forward(token, mask[:, cached:], position, cache).logits[:, -1].float()
        return (all(layer.prefix.reads == 1 for layer in cache.layers)
                and float((shared - whole).abs().max()) <= 1e-4 * float(whole.abs().max()))

    def _join(self, group: list[int]) -> None:
        """Prefill ``group``'s prompts and add those still going to the running batch."""
        import torch  # heavy: only when generating

        began = time.perf_counter()
        kind = self.group_of[group[0]]  # the prompts of a prefill are of one group
        shared, prefix_cache = self.shared[kind], self.prefix_cache[kind]
        cached = self.d.virtual + shared  # positions already in prefix_cache
        cache = None
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(group))
        input_ids, rest_mask = self.d.padded([self.ids[i][shared:] for i in group])
        attention_mask = torch.cat([rest_mask.new_ones((len(group), cached)), rest_mask], dim=-1)
        # As generate(): positions count real tokens only, so padding does not shift them.
        position_ids = cached + (rest_mask.cumsum(-1) - 1).clamp(min=0)
        out = self.d.forward(input_ids, attention_mask, position_ids, cache)
        position_ids = position_ids[:, -1:]
        cache = _cache_of(out)
        if self.share_attention:  # the running batch keeps the rows' own positions only
            attention_mask = attention_mask[:, cached:]
        first = out.logits[:, -1, :].float().argmax(dim=-1)
        share = (time.perf_counter() - began) / len(group)
        for i in group:
            self.outputs[i], self.seconds[i] = [], share
        going = self._take(group, first)
        if not self.rows:
            self.joinable = _plain_dynamic(cache)
            if self.joinable:
                from ftui.backends.local.kv_cache import preallocate  # heavy: imports transformers

                preallocate(cache, headroom=KV_HEADROOM, prefix=self.prefix if self.share_attention else None,
                            skip=cached)
            self.cache, self.attention_mask, self.position_ids, self.rows = cache, attention_mask, position_ids, group
            if self.prefix_rows is not None:
                self.prefix_rows.mask = self._prefix_mask(group)
            self._narrow(going, first)
        elif going:
            index = torch.tensor(going, device=first.device)
            if len(going) < len(group):
                cache.batch_select_indices(index)
            self._append(cache, attention_mask[index], position_ids[index], [group[at] for at in going],
                         first[index], skip=cached)

    def _join_packed(self, group: list[int]) -> None:
        """Prefill ``group``'s prompts (of one group) as one sequence after their shared beginning,
        and add those still going to the running batch.

        No padding and no copy of the beginning: the prompts' own tokens go through the model one
        after the other, each position at its place in its own prompt, and the attention
        (``kv_cache.packed_attention``) reads the beginning once for all of them and each prompt's
        own positions causally; the logits are those of each prompt's last position.
        """
        import torch  # heavy: only when generating
        from transformers.cache_utils import DynamicCache  # heavy: only when generating

        from ftui.backends.local.kv_cache import PackedLayer, PackedRows, SharedPrefixLayer  # heavy: transformers

        began = time.perf_counter()
        kind = self.group_of[group[0]]
        shared, device = self.shared[kind], self.d.device
        cached = self.d.virtual + shared  # positions in the shared beginning
        start, end = self.spans[kind]
        own = [self.ids[i][shared:] for i in group]
        lengths = [len(tokens) for tokens in own]
        layout = PackedRows(lengths, device)
        cache = DynamicCache()
        cache.layers = [PackedLayer(layout, (p.keys[:, :, start:end], p.values[:, :, start:end])) for p in self.prefix]
        input_ids = torch.tensor([[t for tokens in own for t in tokens]], dtype=torch.long, device=device)
        positions = torch.cat([torch.arange(cached, cached + n, device=device) for n in lengths])[None]
        last = torch.tensor(lengths, device=device).cumsum(0) - 1
        # A 4D mask goes to the attention as it is; packed_attention masks by itself.
        mask = torch.ones((1, 1, 1, 1), dtype=torch.bool, device=device)
        out = self.d.forward(input_ids, mask, positions, cache, logits_to_keep=last)
        first = out.logits[0].float().argmax(dim=-1)
        share = (time.perf_counter() - began) / len(group)
        for i in group:
            self.outputs[i], self.seconds[i] = [], share
        going = self._take(group, first)
        if not going:
            return
        index = torch.tensor(going, device=device)
        parts = [(layout.left_padded(layer.keys, index), layout.left_padded(layer.values, index))
                 for layer in cache.layers]
        kept = torch.tensor([lengths[at] for at in going], device=device)
        width = int(kept.max())
        attention_mask = (torch.arange(width, device=device)[None] >= width - kept[:, None]).long()
        position_ids = cached + kept[:, None] - 1
        rows = [group[at] for at in going]
        if self.rows:
            joining = types.SimpleNamespace(layers=[types.SimpleNamespace(keys=k, values=v) for k, v in parts])
            self._append(joining, attention_mask, position_ids, rows, first[index], skip=0)
            return
        self.joinable = True
        self.cache = DynamicCache()
        self.cache.layers = [SharedPrefixLayer(p, [part], headroom=KV_HEADROOM) for p, part in zip(self.prefix, parts)]
        self.attention_mask, self.position_ids, self.rows = attention_mask, position_ids, rows
        self.next_tokens = first[index]
        if self.prefix_rows is not None:
            self.prefix_rows.mask = self._prefix_mask(rows)

    def _append(self, cache: Any, attention_mask: Any, position_ids: Any, group: list[int], first: Any,
                skip: int) -> None:
        """Add rows to the running batch: keys, values and masks left-padded to one length."""
        import torch  # heavy: only when generating
        import torch.nn.functional as F

        from ftui.backends.local.kv_cache import append_rows  # heavy: imports transformers

        width = max(self.attention_mask.shape[1], attention_mask.shape[1])

        def left(mask: Any) -> Any:  # zeros before the first position
            return F.pad(mask, (width - mask.shape[1], 0))

        append_rows(self.cache, cache, width=width, headroom=KV_HEADROOM, skip=skip)
        if self.prefix_rows is not None:
            self.prefix_rows.mask = torch.cat([self.prefix_rows.mask, self._prefix_mask(group)])
        self.attention_mask = torch.cat([left(self.attention_mask), left(attention_mask)])
        self.position_ids = torch.cat([self.position_ids, position_ids])
        self.next_tokens = torch.cat([self.next_tokens, first])
        self.rows = self.rows + group

    def _trim(self) -> None:
        """Cut the cache's leading positions that no row attends to any more.

        The rows that left had the longest histories; without this the keys and values of a
        long run grow by one position per step for every row, and copying and reading them
        costs as much as the weights.
        """
        first = int(self.attention_mask.any(dim=0).int().argmax())
        if first:
            from ftui.backends.local.kv_cache import drop_front  # heavy: imports transformers

            drop_front(self.cache, first)
            self.attention_mask = self.attention_mask[:, first:]

    def _step(self) -> None:
        """One decoding step of the running batch."""
        import torch  # heavy: only when generating

        began = time.perf_counter()
        self.attention_mask = torch.cat(
            [self.attention_mask, self.attention_mask.new_ones((len(self.rows), 1))], dim=-1)
        self.position_ids = self.position_ids + 1
        out = self.d.forward(self.next_tokens[:, None], self.attention_mask, self.position_ids, self.cache)
        self.cache = _cache_of(out)
        next_tokens = out.logits[:, -1, :].float().argmax(dim=-1)
        live = [i for i in self.rows if i in self.seconds]
        share = (time.perf_counter() - began) / len(live)
        for i in live:
            self.seconds[i] += share
        self._narrow(self._take(self.rows, next_tokens), next_tokens)

    def _take(self, rows: list[int], tokens: Any) -> list[int]:
        """Record each row's new token; returns the positions (in ``rows``) of rows still going."""
        going = []
        for at, token in enumerate(tokens.tolist()):
            i = rows[at]
            if i not in self.outputs:  # finished earlier, carried along (a cache that cannot cut)
                continue
            if token not in self.d.stops:
                self.outputs[i].append(token)
                if len(self.outputs[i]) < self.d.max_new_tokens:
                    going.append(at)
                    continue
            self.finished(i, self.outputs.pop(i), self.seconds.pop(i))
        return going

    def _narrow(self, going: list[int], tokens: Any) -> None:
        """Keep the running batch's rows still going (``tokens``: their inputs for the next step)."""
        import torch  # heavy: only when generating

        if len(going) == len(self.rows):
            self.next_tokens = tokens
        elif not going:
            self.rows, self.cache, self.attention_mask, self.position_ids = [], None, None, None
            if self.prefix_rows is not None:
                self.prefix_rows.mask = None
        elif self.joinable:
            from ftui.backends.local.kv_cache import keep_rows  # heavy: imports transformers

            order = keep_rows(self.cache, going, len(self.rows))
            index = torch.tensor(order, device=tokens.device)
            self.attention_mask, self.position_ids = self.attention_mask[index], self.position_ids[index]
            self.next_tokens = tokens[index]
            self.rows = [self.rows[at] for at in order]
            if self.prefix_rows is not None:
                self.prefix_rows.mask = self.prefix_rows.mask[index]
            self._trim()
        else:  # finished rows stay, fed padding, as in generate()
            carried = torch.ones(len(self.rows), dtype=torch.bool, device=tokens.device)
            carried[going] = False
            self.next_tokens = tokens.masked_fill(carried, self.d.pad)


@contextlib.contextmanager
def _few_rows_linears(model: Any) -> Iterator[None]:
    """On a CPU, float32 Linear layers compute 2 to ``FEW_ROWS`` rows as ``(W @ x.T).T``.

    The same products as ``x @ W.T``, through MKL's other kernel, which streams the weights
    faster for few rows (measured on an AMD EPYC with torch 2.13: a decoding step of the
    embedded model with 3 rows took 147 ms, 67 ms this way; with 8 to 32 k-shot rows 10-20%
    less, 156 ms against 188 ms with 32), more than ``ROW_TILE`` rows padded with zeros to a
    multiple of it, where that kernel is at its fastest. The layers are restored on exit.
    """
    import torch  # heavy: only when generating

    linears = [m for m in model.modules() if type(m) is torch.nn.Linear and "forward" not in vars(m)
               and m.weight.device.type == "cpu" and m.weight.dtype == torch.float32]
    for m in linears:
        m.forward = types.MethodType(_linear_few_rows, m)
    try:
        yield
    finally:
        for m in linears:
            vars(m).pop("forward", None)


def _linear_few_rows(self: Any, x: Any) -> Any:
    import torch  # heavy: only when generating

    rows = x.numel() // x.shape[-1]
    if not 2 <= rows <= FEW_ROWS:
        return torch.nn.functional.linear(x, self.weight, self.bias)
    flat = x.reshape(rows, x.shape[-1])
    if rows > ROW_TILE and rows % ROW_TILE:  # zero rows: each row's products stay its own
        flat = torch.cat([flat, flat.new_zeros(ROW_TILE - rows % ROW_TILE, flat.shape[-1])])
    y = (self.weight @ flat.T).T[:rows]
    if self.bias is not None:
        y = y + self.bias
    return y.reshape(*x.shape[:-1], y.shape[-1])


def _base_model(model: Any) -> Any:
    """The transformers model under a peft wrapper (an unmerged adapter: on a quantized base,
    or prefix tuning)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _virtual_tokens(model: Any) -> int:
    """The virtual tokens prefix tuning puts before every prompt; 0 for any other model."""
    config = getattr(model, "active_peft_config", None)
    if config is None or not getattr(config, "is_prompt_learning", False):
        return 0
    from peft import PeftType  # heavy: only for a peft model, which imported it already

    return config.num_virtual_tokens if config.peft_type == PeftType.PREFIX_TUNING else 0


def _loop_can_run(decoder: _Decoder, model: Any) -> bool:
    """Whether ftui's loop can run ``model`` as it would a plain one: no prompt learning, or
    prefix tuning with a cache of full-attention layers (copied to each row like a shared
    beginning). Other prompt learning (soft prompts as input embeddings) goes through
    ``generate``."""
    if decoder.virtual:
        import torch  # heavy: only when generating

        with torch.inference_mode():
            return _plain_dynamic(decoder.virtual_cache(1))
    config = getattr(model, "active_peft_config", None)
    return not getattr(config, "is_prompt_learning", False)


def _plain_greedy(model: Any) -> bool:
    """Whether ``generate`` would decode ``model`` greedily with no logits processor at all.

    Only then does ftui's loop give the same tokens; any other setting in the model's
    generation config (a repetition penalty, banned or forced tokens, an unknown new field)
    sends the batched path through ``generate`` as well.
    """
    base = _base_model(model)
    if getattr(base.config, "is_encoder_decoder", False):
        return False
    config = getattr(base, "generation_config", None)
    if config is None:
        return True
    for key, value in config.to_diff_dict().items():
        if key in _GREEDY_IGNORED:
            continue
        if key not in _GREEDY_NEUTRAL or value not in _GREEDY_NEUTRAL[key]:
            return False
    return True


def _cache_of(out: Any) -> Any:
    """The KV cache a forward returned (``cache`` in transformers 5, ``past_key_values`` before)."""
    cache = out.get("cache", None)
    if cache is None:
        cache = out.get("past_key_values", None)
    if cache is None:
        raise RuntimeError("the model returned no KV cache with use_cache=True")
    return cache


def _packs(lengths: Sequence[int], most: int = PACK_TOKENS) -> list[list[int]]:
    """Consecutive prompts whose tokens (``lengths``) prefill in one packed forward, at most
    ``most`` tokens each (a prompt longer than that alone)."""
    packs: list[list[int]] = []
    total = most
    for at, n in enumerate(lengths):
        if total + n > most:
            packs.append([])
            total = 0
        packs[-1].append(at)
        total += n
    return packs


def _prefill_groups(lengths: Sequence[int], forward_cost: int = PREFILL_FORWARD_TOKENS) -> list[list[int]]:
    """Split prompts (longest first) into consecutive groups that prefill with least work.

    A group pads every prompt to its longest; a forward costs about ``forward_cost`` tokens'
    work besides its tokens (reading the weights). Exact, by dynamic programming over the
    split points (a few dozen prompts at most).
    """
    n = len(lengths)
    best = [0.0] + [float("inf")] * n  # best[j]: least cost of the first j prompts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):  # the last group is prompts i..j-1, padded to lengths[i]
            cost = best[i] + forward_cost + (j - i) * lengths[i]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], n
    while j:
        groups.append(list(range(cut[j], j)))
        j = cut[j]
    return groups[::-1]


def _shared_prefix(batch: Sequence[Sequence[int]]) -> int:
    """Tokens every row begins with, leaving each row at least one of its own."""
    shortest = min(len(row) for row in batch)
    n = 0
    while n < shortest - 1 and all(row[n] == batch[0][n] for row in batch):
        n += 1
    return n


def _plain_dynamic(cache: Any) -> bool:
    """A dynamic cache of full-attention layers (transformers 5): rows can be copied, cut and joined."""
    layers = getattr(cache, "layers", None)
    return (type(cache).__name__ == "DynamicCache" and layers is not None
            and all(type(layer).__name__ == "DynamicLayer" for layer in layers))
