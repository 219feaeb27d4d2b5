"""Greedy generation for eval: batched (length-sorted, left-padded) and one at a time.

Both functions take chat prompts (lists of ``{"role", "content"}``), apply the tokenizer's
chat template with the generation prompt, decode greedily until the end of the turn and
return ``(output, latency_s)`` per prompt in the order given.

Batched and one-at-a-time decoding give the same tokens in float32: left padding with an
attention mask keeps every real token at the same position id (generate derives position
ids from the mask's cumulative sum) and masked keys get zero attention weight. Checked on
the embedded model: 32 of 32 demo prompts identical at batch size 16. What still changes
with the batch is the last bits of each matmul (the kernels block by shape); in float32 that
is far below the gap between the top two logits, which is why the runner evaluates in
float32. In bfloat16 the same noise flips near-ties: 7 of 16 demo prompts differed, and 1 of
16 even in a batch of identical, unpadded prompts, so it is rounding, not padding.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

Prompt = Sequence[dict]
Progress = Callable[[int, int], None]

END_OF_TURN = "<|im_end|>"
"""ChatML's end of turn (SmolLM2, Qwen): a stop token even where it is not the eos token."""


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
                     batch_size: int = 16, on_progress: Progress | None = None) -> list[tuple[str, float]]:
    """Greedy outputs with per-example latency (batch wall time / batch size), in input order.

    Prompts are sorted by token length, longest first (stable), so each batch pads little and
    an out-of-memory error shows up on the first batch rather than the last.
    ``on_progress(done, total)`` runs after each batch; it may raise to stop early.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not prompts:
        return []
    ids = prompt_token_ids(tokenizer, prompts)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    results: list[tuple[str, float] | None] = [None] * len(ids)
    decode = _Decoder(model, tokenizer, max_new_tokens)
    done = 0
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        began = time.perf_counter()
        texts = decode([ids[i] for i in chunk])
        share = (time.perf_counter() - began) / len(chunk)
        for i, text in zip(chunk, texts):
            results[i] = (text, share)
        done += len(chunk)
        if on_progress is not None:
            on_progress(done, len(ids))
    return [r for r in results if r is not None]


def generate_one_at_a_time(model: Any, tokenizer: Any, prompts: Sequence[Prompt], *,
                           max_new_tokens: int,
                           on_progress: Progress | None = None) -> list[tuple[str, float]]:
    """One prompt per ``generate`` call, no padding: the baseline that batching must match."""
    if not prompts:
        return []
    decode = _Decoder(model, tokenizer, max_new_tokens)
    results = []
    for n, ids in enumerate(prompt_token_ids(tokenizer, prompts), start=1):
        began = time.perf_counter()
        (text,) = decode([ids])
        results.append((text, time.perf_counter() - began))
        if on_progress is not None:
            on_progress(n, len(prompts))
    return results


class _Decoder:
    """Left-pads a list of token-id lists, runs greedy ``generate``, decodes the new tokens."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int) -> None:
        import transformers  # heavy: only when generating

        self.model, self.tokenizer = model, tokenizer
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

    def __call__(self, batch: Sequence[Sequence[int]]) -> list[str]:
        import torch  # heavy: only when generating

        # Padding by hand (left, for decoder-only generation) leaves the tokenizer untouched.
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            if ids:
                input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
                attention_mask[row, width - len(ids):] = 1
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                      generation_config=self.config)
        return [self.tokenizer.decode(self._until_stop(tokens), skip_special_tokens=True).strip()
                for tokens in out[:, width:].tolist()]

    def _until_stop(self, tokens: list[int]) -> list[int]:
        # Finished rows are filled with pad up to the batch's longest; the pad token need not
        # be special, so cut at the first stop token rather than trusting skip_special_tokens.
        for n, token in enumerate(tokens):
            if token in self.stops:
                return tokens[:n]
        return tokens
