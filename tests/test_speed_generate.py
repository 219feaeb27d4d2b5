"""Batched eval's own greedy loop: same tokens as ``generate`` one at a time, finished rows dropped."""

from __future__ import annotations

import pytest
import torch

from ftui.backends.local import generate as generate_mod
from ftui.backends.local.generate import _Decoder, generate_batched, generate_one_at_a_time, prompt_token_ids

from test_local_eval import demo_prompts, lively_model, loaded  # noqa: F401 - fixtures


def texts(results):
    return [text for text, _ in results]


@pytest.fixture()
def early_stops(loaded, monkeypatch):
    """A second stop token that the lively model emits early in some of the first batch's outputs.

    With only the eos as stop the random tiny model never stops early: every row would run to
    max_new_tokens, and rows would never leave the batch or join it.
    """
    model, tok = loaded
    prompts = demo_prompts(12)
    ids = prompt_token_ids(tok, prompts)
    first_batch = sorted(range(12), key=lambda i: -len(ids[i]))[:6]
    outputs = {}
    for i in range(12):
        with torch.inference_mode():
            out = model.generate(input_ids=torch.tensor([ids[i]]), generation_config=_Decoder(model, tok, 12).config)
        outputs[i] = out[0, len(ids[i]):].tolist()
    rows: dict[int, set[int]] = {}
    for i in first_batch:
        for token in outputs[i][1:8]:
            rows.setdefault(token, set()).add(i)
    # Stops a few of the first rows early, not all of them.
    stop = max((t for t in rows if len(rows[t]) < 6), key=lambda t: (len(rows[t]), -t))
    real = generate_mod.stop_token_ids
    monkeypatch.setattr(generate_mod, "stop_token_ids", lambda tokenizer: [*real(tokenizer), stop])
    return prompts


def test_finished_rows_leave_and_waiting_prompts_join_with_the_same_outputs(loaded, early_stops):
    model, tok = loaded
    calls: list[tuple[int, int]] = []  # (rows, tokens per row) of each forward

    def record(module, args, kwargs):
        calls.append(tuple(kwargs["input_ids"].shape))

    hook = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        batched = generate_batched(model, tok, early_stops, max_new_tokens=12, batch_size=6)
    finally:
        hook.remove()
    single = generate_one_at_a_time(model, tok, early_stops, max_new_tokens=12)
    assert texts(batched) == texts(single)
    lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts(single)]
    assert len(set(lengths)) >= 3  # rows really stopped at different steps

    assert max(rows for rows, _ in calls) <= 6
    decoding = [rows for rows, width in calls if width == 1]
    assert any(b < a for a, b in zip(decoding, decoding[1:]))  # rows left the batch
    first_step = calls.index(next(c for c in calls if c[1] == 1))
    joins = [rows for rows, width in calls[first_step:] if width > 1]
    assert joins and all(rows < 6 for rows in joins)  # prompts joined a running batch


def test_the_prompts_shared_beginning_goes_through_the_model_once(loaded):
    model, tok = loaded
    prompts = demo_prompts(12)  # one system message, one template: about 30 tokens in common
    calls: list[tuple[int, int]] = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: calls.append(tuple(kw["input_ids"].shape)),
                                           with_kwargs=True)
    try:
        batched = generate_batched(model, tok, prompts, max_new_tokens=6, batch_size=6)
    finally:
        hook.remove()
    assert texts(batched) == texts(generate_one_at_a_time(model, tok, prompts, max_new_tokens=6))
    shared = prompt_token_ids(tok, prompts[:1])[0]
    prefix = calls[0][1]
    assert calls[0][0] == 1 and prefix >= 20 and all(
        ids[:prefix] == shared[:prefix] for ids in prompt_token_ids(tok, prompts))
    assert [c for c in calls if c[1] > 1 and c[0] == 1] == [calls[0]]  # once for all 12 prompts
    # The rows' own forward is as wide as the longest prompt minus the shared part.
    longest = max(len(ids) for ids in prompt_token_ids(tok, prompts))
    assert calls[1] == (6, longest - prefix)


def test_a_model_asking_for_more_than_greedy_goes_through_generate(loaded, monkeypatch):
    model, tok = loaded
    prompts = demo_prompts(6)
    plain = generate_one_at_a_time(model, tok, prompts, max_new_tokens=8)
    ids = prompt_token_ids(tok, prompts[:1])
    with torch.inference_mode():
        out = model.generate(input_ids=torch.tensor(ids), generation_config=_Decoder(model, tok, 1).config)
    first = out[0, -1].item()
    # A logits processor only generate() applies: the first output's first token is banned.
    monkeypatch.setattr(model.generation_config, "suppress_tokens", [first])
    assert not _Decoder(model, tok, 8).plain_greedy
    looped = []
    monkeypatch.setattr(generate_mod._Stream, "run", lambda self: looped.append(self))
    batched = generate_batched(model, tok, prompts, max_new_tokens=8, batch_size=4)
    assert not looped
    single = generate_one_at_a_time(model, tok, prompts, max_new_tokens=8)
    assert texts(batched) == texts(single) != texts(plain)  # the setting took effect, in both


def test_sampling_settings_in_the_model_config_do_not_leave_greedy(loaded, monkeypatch):
    model, tok = loaded
    for key, value in (("do_sample", True), ("temperature", 0.7), ("top_p", 0.9)):
        monkeypatch.setattr(model.generation_config, key, value)
    assert _Decoder(model, tok, 8).plain_greedy  # eval pins greedy; these settings are ignored
    prompts = demo_prompts(5)
    assert texts(generate_batched(model, tok, prompts, max_new_tokens=8, batch_size=5)) == texts(
        generate_one_at_a_time(model, tok, prompts, max_new_tokens=8))


def test_prefill_groups_trade_padding_against_forwards():
    from ftui.backends.local.generate import _prefill_groups

    assert _prefill_groups([40]) == [[0]]
    assert _prefill_groups([30, 30, 29, 29]) == [[0, 1, 2, 3]]  # padding a token beats a forward
    assert _prefill_groups([300, 20, 20, 20], forward_cost=32) == [[0], [1, 2, 3]]  # 840 tokens of padding
    groups = _prefill_groups([62, 60, 55, 50, 48, 45, 44, 43, 40, 38, 36, 30, 28, 27, 25, 24])
    assert [i for g in groups for i in g] == list(range(16)) and 1 < len(groups) < 16
