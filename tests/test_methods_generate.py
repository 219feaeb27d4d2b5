"""Every training method's result decodes alike batched and one at a time, and evaluates.

Each method's weights are built on the lively tiny Llama with non-trivial values (LoRA's B not
zero, IA3's scales and DoRA's magnitudes away from their start, random prefix vectors, every
weight of the full model moved), so a path that ignored them would give the base's tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from ftui.backends.local import evaluate as evaluate_mod
from ftui.backends.local import generate as generate_mod
from ftui.backends.local.evaluate import evaluate_run
from ftui.backends.local.generate import _Decoder, generate_batched, generate_one_at_a_time, prompt_token_ids
from ftui.backends.local.models import load_model
from ftui.core.config import ADAPTER_METHODS, METHODS
from ftui.core.prompts import render_messages

from test_local_eval import DEMO, demo_prompts, lively_model, loaded, make_run, read_jsonl  # noqa: F401 - fixtures

NEW_TOKENS = 12
BATCH = 5


def tuned(method: str, lively: Path, folder: Path) -> Any:
    """The lively model with ``method``'s weights, as training leaves them (eval mode): a peft
    model for adapter methods, the model loaded from ``folder`` for ``full``."""
    import peft
    import transformers

    g = torch.Generator().manual_seed(1)
    base = transformers.AutoModelForCausalLM.from_pretrained(lively)
    if method == "full":
        with torch.no_grad():
            for name, p in base.named_parameters():
                if p.ndim == 2 and "embed" not in name:
                    p.add_(torch.randn(p.shape, generator=g) * 0.1)
        base.save_pretrained(folder)
        transformers.AutoTokenizer.from_pretrained(lively).save_pretrained(folder)
        return load_model(str(folder)).eval()
    configs = {
        "lora": peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                                task_type="CAUSAL_LM"),
        "dora": peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                                use_dora=True, task_type="CAUSAL_LM"),
        "ia3": peft.IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"],
                              task_type="CAUSAL_LM"),
        "prefix": peft.PrefixTuningConfig(num_virtual_tokens=5, task_type="CAUSAL_LM"),
    }
    model = peft.get_peft_model(base, configs[method])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ia3_l" in name or "lora_magnitude_vector" in name:  # start at the identity: move them
                p.mul_(1 + 0.5 * torch.randn(p.shape, generator=g))
            elif "prompt_encoder" in name:
                p.copy_(torch.randn(p.shape, generator=g))
    return model.eval()


def new_tokens(model: Any, tok: Any, prompts: list) -> list[list[int]]:
    """Each prompt's greedy tokens, one ``generate`` at a time (the baseline's own path)."""
    decoder = _Decoder(model, tok, NEW_TOKENS)
    return [decoder.generate([ids])[0] for ids in prompt_token_ids(tok, prompts)]


def recomputed(model: Any, tok: Any, prompt: list) -> list[int]:
    """Greedy tokens from the model's own forward over the whole sequence each step, no cache:
    for prefix tuning, peft's forward as training runs it."""
    (ids,) = prompt_token_ids(tok, [prompt])
    stops = set(generate_mod.stop_token_ids(tok))
    seq, out = list(ids), []
    with torch.inference_mode():
        for _ in range(NEW_TOKENS):
            x = torch.tensor([seq])
            token = int(model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0, -1].argmax())
            if token in stops:
                break
            out.append(token)
            seq.append(token)
    return out


def early_stop(tokens: list[list[int]], first_batch: list[int]) -> int:
    """A token some, not all, of the first batch's outputs emit early: as a stop, rows leave at
    different steps and waiting prompts join the running batch (the random model never emits
    its eos)."""
    rows: dict[int, set[int]] = {}
    for i in first_batch:
        for token in tokens[i][1:8]:
            rows.setdefault(token, set()).add(i)
    candidates = [t for t in rows if len(rows[t]) < len(first_batch)]
    assert candidates, "no token to stop some rows early"
    return max(candidates, key=lambda t: (len(rows[t]), -t))


def texts(results: list) -> list[str]:
    return [text for text, _ in results]


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_decodes_the_same_batched_as_one_at_a_time(method, lively_model, loaded, tmp_path,
                                                                monkeypatch):
    base, tok = loaded
    model = tuned(method, lively_model, tmp_path / "full")
    prompts = demo_prompts(12)
    assert _Decoder(model, tok, NEW_TOKENS).plain_greedy  # batched runs ftui's loop, not generate

    tokens = new_tokens(model, tok, prompts)
    base_tokens = new_tokens(base, tok, prompts)
    assert sum(a != b for a, b in zip(tokens, base_tokens)) > len(prompts) // 2  # the weights took effect
    for i in (0, 4, 7):  # the baseline is the model's own greedy decoding
        assert tokens[i] == recomputed(model, tok, prompts[i])

    ids = prompt_token_ids(tok, prompts)
    first_batch = sorted(range(len(ids)), key=lambda i: -len(ids[i]))[:BATCH]
    stop = early_stop(tokens, first_batch)
    real = generate_mod.stop_token_ids
    monkeypatch.setattr(generate_mod, "stop_token_ids", lambda tokenizer: [*real(tokenizer), stop])

    calls: list[tuple[int, int]] = []  # (rows, tokens per row) of each forward
    embeddings = generate_mod._base_model(model).get_input_embeddings()
    hook = embeddings.register_forward_pre_hook(lambda module, args: calls.append(tuple(args[0].shape)))
    try:
        batched = generate_batched(model, tok, prompts, max_new_tokens=NEW_TOKENS, batch_size=BATCH)
    finally:
        hook.remove()
    single = generate_one_at_a_time(model, tok, prompts, max_new_tokens=NEW_TOKENS)
    assert texts(batched) == texts(single)
    assert len(set(texts(single))) >= 8 and len({len(t) for t in texts(single)}) >= 3

    decoding = [rows for rows, width in calls if width == 1]
    assert any(b < a for a, b in zip(decoding, decoding[1:]))  # rows left the batch
    first_step = calls.index(next(c for c in calls if c[1] == 1 and c[0] > 1))  # after the one-row probe
    assert [rows for rows, width in calls[first_step:] if width > 1 and rows < BATCH]  # and joined it
    assert calls[0][0] == 1  # the prompts' shared beginning went through once...

    monkeypatch.setattr(generate_mod, "MIN_SHARED_TOKENS", 10**9)  # ... and without sharing it
    unshared = generate_batched(model, tok, prompts, max_new_tokens=NEW_TOKENS, batch_size=BATCH)
    assert texts(unshared) == texts(single)


@pytest.mark.parametrize("method", list(METHODS))
def test_finetuned_variant_evaluates_the_runs_trained_weights(method, lively_model, loaded, monkeypatch):
    import peft

    base, tok = loaded
    run = make_run(lively_model, n_test=6)
    model = tuned(method, lively_model, run.model_path)  # full fine-tuning writes model/ itself
    if method in ADAPTER_METHODS:
        model.save_pretrained(run.adapter_path)
    used, loads = [], []
    real_generate, real_load = evaluate_mod.generate_batched, evaluate_mod.load_model
    monkeypatch.setattr(evaluate_mod, "generate_batched",
                        lambda m, *a, **kw: used.append(m) or real_generate(m, *a, **kw))
    monkeypatch.setattr(evaluate_mod, "load_model", lambda *a, **kw: loads.append(a[0]) or real_load(*a, **kw))

    assert set(evaluate_run(run, variants=("finetuned",))) == {"finetuned"}
    metrics = json.loads((run.dir / "eval" / "finetuned" / "metrics.json").read_text())
    if method in ADAPTER_METHODS:
        assert metrics["adapter"] == "adapter" and loads == [str(lively_model)]
    else:
        assert metrics["adapter"] == "model" and loads == [str(run.model_path)]
    # Merged where the method has weights to fold; prefix tuning stays a peft model.
    assert isinstance(used[0], peft.PeftModel) == (method == "prefix")

    prompts = [render_messages(ex, DEMO.prompt) for ex in run.examples("test")]
    outputs = [r["output"] for r in read_jsonl(run.dir / "eval" / "finetuned" / "predictions.jsonl")]
    assert outputs == texts(generate_one_at_a_time(model, tok, prompts, max_new_tokens=8))
    assert outputs != texts(generate_one_at_a_time(base, tok, prompts, max_new_tokens=8))
