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
    first_step = calls.index(next(c for c in calls if c[1] == 1 and c[0] > 1))  # after the one-row probe
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
    # Then one step of one row, twice (does the attention read the shared part once for all the
    # rows?), and the prompts' own tokens, packed: one sequence a prefill, every prompt's tokens
    # after the shared part once, no padding.
    assert calls[1:3] == [(1, 1), (1, 1)]
    prefills = [c for c in calls[3:] if c[1] > 1]
    assert all(rows == 1 for rows, _ in prefills) and len(prefills) >= 2  # the first 6, then those joining
    assert sum(width for _, width in prefills) == sum(len(ids) - prefix for ids in prompt_token_ids(tok, prompts))


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


def test_preallocated_layer_holds_what_cat_would_hold():
    from ftui.backends.local.kv_cache import PreallocatedLayer

    g = torch.Generator().manual_seed(0)

    def kv(rows, positions):
        return torch.randn(rows, 2, positions, 4, generator=g), torch.randn(rows, 2, positions, 4, generator=g)

    def left(t, width):
        return torch.nn.functional.pad(t, (0, 0, width - t.shape[2], 0))

    a, b = kv(3, 5), kv(2, 7)
    layer = PreallocatedLayer([a, b], headroom=2)  # rows stacked, the shorter left-padded with zeros
    keys, values = torch.cat([left(a[0], 7), left(b[0], 7)]), torch.cat([left(a[1], 7), left(b[1], 7)])
    assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values) and layer.get_seq_length() == 7
    buffer = layer.key_buffer
    for step in range(5):
        k, v = kv(5, 1)
        out = layer.update(k, v)
        keys, values = torch.cat([keys, k], dim=2), torch.cat([values, v], dim=2)
        assert torch.equal(out[0], keys) and torch.equal(out[1], values)
        assert (layer.key_buffer is buffer) == (step < 2)  # in place while there is room, then copied once

    rows = torch.tensor([4, 1])
    layer.batch_select_indices(rows)
    layer.drop_front(3)
    keys, values = keys[rows][:, :, 3:], values[rows][:, :, 3:]
    assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values) and layer.get_seq_length() == 9
    k, v = kv(2, 1)
    out = layer.update(k, v)
    assert torch.equal(out[0], torch.cat([keys, k], dim=2)) and torch.equal(out[1], torch.cat([values, v], dim=2))


@pytest.mark.parametrize("headroom", [1, 64])
def test_decoding_writes_keys_and_values_in_place_with_the_same_outputs(loaded, early_stops, monkeypatch, headroom):
    from ftui.backends.local import kv_cache

    model, tok = loaded
    monkeypatch.setattr(generate_mod, "KV_HEADROOM", headroom)
    updates: list[int] = []
    grown: list[int] = []  # copies because the room ran out
    real_update, real_fill = kv_cache.PreallocatedLayer.update, kv_cache.PreallocatedLayer._fill
    monkeypatch.setattr(kv_cache.PreallocatedLayer, "update",
                        lambda self, *a, **kw: updates.append(1) or real_update(self, *a, **kw))
    monkeypatch.setattr(kv_cache.PreallocatedLayer, "_fill",
                        lambda self, parts, extra=0: (extra and grown.append(extra)) or real_fill(self, parts, extra))
    batched = generate_batched(model, tok, early_stops, max_new_tokens=12, batch_size=6)
    assert texts(batched) == texts(generate_one_at_a_time(model, tok, early_stops, max_new_tokens=12))
    assert len(updates) >= 11 * model.config.num_hidden_layers  # every decoding step wrote into the buffers
    assert bool(grown) == (headroom == 1)  # 64 positions of room: no copy for 12 new tokens


def test_shared_prefix_attention_equals_sdpa_over_whole_rows():
    import types

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from ftui.backends.local.kv_cache import SharedPrefix, SharedPrefixLayer, shared_prefix_attention

    g = torch.Generator().manual_seed(0)
    rows, heads, kv_heads, dim, shared, own = 3, 6, 2, 8, 5, 4
    module = types.SimpleNamespace(num_key_value_groups=heads // kv_heads, is_causal=True)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    prefix = randn(1, kv_heads, shared, dim), randn(1, kv_heads, shared, dim)
    layer = SharedPrefixLayer(SharedPrefix(*prefix), [(randn(rows, kv_heads, own, dim), randn(rows, kv_heads, own, dim))], headroom=1)
    keys, values = layer.update(randn(rows, kv_heads, 1, dim), randn(rows, kv_heads, 1, dim))
    query = randn(rows, heads, 1, dim)
    mask = torch.ones(rows, 1, 1, own + 1, dtype=torch.bool)
    mask[0, ..., :2] = False  # a left-padded row
    out, _ = shared_prefix_attention(module, query, keys, values, mask, scaling=dim ** -0.5)
    assert layer.prefix.reads == 1

    def whole(part, t):
        return torch.cat([part.expand(rows, -1, -1, -1), t], dim=2)

    whole_mask = torch.cat([torch.ones(rows, 1, 1, shared, dtype=torch.bool), mask], dim=-1)
    expected, _ = sdpa_attention_forward(module, query, whole(prefix[0], keys), whole(prefix[1], values), whole_mask,
                                         scaling=dim ** -0.5)
    assert out.shape == expected.shape == (rows, 1, heads, dim)
    assert torch.allclose(out, expected, atol=1e-6) and not torch.allclose(out[0], expected[1], atol=1e-2)
    # Keys of any other layer go to sdpa as they are.
    plain, _ = shared_prefix_attention(module, query, whole(prefix[0], keys), whole(prefix[1], values), whole_mask,
                                       scaling=dim ** -0.5)
    assert torch.equal(plain, expected)


@pytest.mark.parametrize("reads", [True, False], ids=["shared", "probe-failed"])
def test_rows_read_the_shared_beginning_once_with_the_same_outputs(loaded, early_stops, monkeypatch, reads):
    from ftui.backends.local import kv_cache

    model, tok = loaded
    if not reads:  # a model whose attention would not read the prefix: every row keeps a copy
        monkeypatch.setattr(generate_mod._Stream, "_shared_attention_reads", lambda self, group: False)
    shared_reads: list[int] = []
    real = kv_cache.shared_prefix_attention

    def spy(module, query, key, *args, **kwargs):
        if hasattr(key, "shared_prefix"):
            shared_reads.append(key.shape[0])
        return real(module, query, key, *args, **kwargs)

    monkeypatch.setattr(kv_cache, "shared_prefix_attention", spy)
    batched = generate_batched(model, tok, early_stops, max_new_tokens=12, batch_size=6)
    assert texts(batched) == texts(generate_one_at_a_time(model, tok, early_stops, max_new_tokens=12))
    assert model.config._attn_implementation == "sdpa"  # restored
    if reads:  # the probe's step, then every decoding step's every layer, rows leaving and joining
        layers = model.config.num_hidden_layers
        assert len(shared_reads) >= (1 + 11) * layers and 6 in shared_reads and any(1 < n < 6 for n in shared_reads)
    else:
        assert not shared_reads


def test_few_rows_go_through_the_other_kernel_with_the_same_products(monkeypatch):
    from ftui.backends.local.generate import FEW_ROWS, ROW_TILE, _few_rows_linears

    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 24), torch.nn.Linear(24, 8, bias=False))
    kernels: list[tuple[int, ...]] = []
    real_matmul = torch.Tensor.__matmul__

    def spy(a, b):
        kernels.append((*a.shape, b.shape[1]))
        return real_matmul(a, b)

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    for rows in (1, 2, 3, ROW_TILE, ROW_TILE + 1, FEW_ROWS - 1, FEW_ROWS, FEW_ROWS + 1):
        x = torch.randn(rows, 1, 16, generator=g)
        expected = model(x)
        kernels.clear()
        with _few_rows_linears(model):
            got = model(x)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        # 2 to FEW_ROWS rows: W @ x.T for both layers (the weight first), more than ROW_TILE rows
        # padded with zeros to a multiple of it; otherwise the plain kernel.
        padded = -(-rows // ROW_TILE) * ROW_TILE if rows > ROW_TILE else rows
        assert kernels == ([(24, 16, padded), (8, 24, padded)] if 2 <= rows <= FEW_ROWS else [])
    assert all("forward" not in vars(m) for m in model)  # restored


def test_batched_eval_decodes_its_steps_through_the_few_rows_kernel(loaded, monkeypatch):
    """generate_batched itself runs its decoding steps through ``_few_rows_linears``: with 12 rows
    the Linear weights multiply ``x.T`` of 16 (padded to a multiple of ``ROW_TILE``), of fewer
    as rows leave, and the tokens are the same."""
    model, tok = loaded
    prompts = demo_prompts(12)
    shapes = {tuple(m.weight.shape) for m in model.modules() if type(m) is torch.nn.Linear}
    rows_seen: list[int] = []
    real_matmul = torch.Tensor.__matmul__

    def spy(a, b):
        if tuple(a.shape) in shapes and b.dim() == 2:
            rows_seen.append(b.shape[1])
        return real_matmul(a, b)

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    batched = generate_batched(model, tok, prompts, max_new_tokens=6, batch_size=12)
    monkeypatch.undo()
    assert 16 in rows_seen and 12 not in rows_seen
    assert all(rows % generate_mod.ROW_TILE == 0 for rows in rows_seen if rows > generate_mod.ROW_TILE)
    assert texts(batched) == texts(generate_one_at_a_time(model, tok, prompts, max_new_tokens=6))


def test_two_groups_of_prompts_decode_together_each_reading_its_own_shared_beginning(loaded, early_stops,
                                                                                      monkeypatch):
    """Base and k-shot prompts in one running batch: the same outputs as one at a time, every
    decoding step's prefix holding both beginnings, each row reading its own group's only."""
    from ftui.backends.local import kv_cache
    from ftui.core.prompts import render_messages
    from test_local_eval import DEMO, demo_examples

    model, tok = loaded
    shots = demo_examples(16)[12:14]
    kshot = [render_messages(ex, DEMO.prompt, shots=shots) for ex in demo_examples(6)]
    prompts = early_stops[:6] + kshot
    masks: list[tuple[int, int]] = []  # (rows, prefix positions) of each masked read
    mixed: list[bool] = []  # whether a step's rows read different positions
    real = kv_cache.shared_prefix_attention

    def spy(module, query, key, *args, **kwargs):
        prefix = getattr(key, "shared_prefix", None)
        if prefix is not None and prefix.rows is not None and prefix.rows.mask is not None:
            mask = prefix.rows.mask
            assert mask.shape == (key.shape[0], prefix.keys.shape[-2])
            masks.append(tuple(mask.shape))
            mixed.append(bool((mask != mask[:1]).any()))
        return real(module, query, key, *args, **kwargs)

    monkeypatch.setattr(kv_cache, "shared_prefix_attention", spy)
    together = generate_batched(model, tok, prompts, max_new_tokens=12, batch_size=8, groups=[0] * 6 + [1] * 6)
    assert texts(together) == texts(generate_one_at_a_time(model, tok, prompts, max_new_tokens=12))
    assert any(mixed)  # rows of both groups in one step, reading different positions
    # A prefix longer than either group's beginning alone: both are in it.
    ids = prompt_token_ids(tok, prompts)
    alone = [generate_mod._shared_prefix(ids[:6]), generate_mod._shared_prefix(ids[6:])]
    assert max(n for _, n in masks) == sum(alone) and min(alone) > 0
    with pytest.raises(ValueError, match="one label per prompt"):
        generate_batched(model, tok, prompts, max_new_tokens=4, groups=[0])
