"""Training speedups that must not change results: grouped batches, the output layer on labels only,
frozen weights stored in bf16."""

from __future__ import annotations

import pytest

from ftui.backends.local.train import SimilarLengthSampler


def padding_share(order: list[int], lengths: list[int], batch: int) -> float:
    padded = sum(max(lengths[i] for i in order[j:j + batch]) * len(order[j:j + batch])
                 for j in range(0, len(order), batch))
    return 1 - sum(lengths) / padded


def test_similar_length_batches_are_a_seeded_permutation_that_pads_little():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(60, 170) for _ in range(340)]
    sampler = SimilarLengthSampler(lengths, batch_size=8, seed=7)
    first = sampler.order(0)
    assert sorted(first) == list(range(340)) and len(sampler) == 340
    assert first == SimilarLengthSampler(lengths, batch_size=8, seed=7).order(0)  # (seed, epoch) decide
    assert first != sampler.order(1) != SimilarLengthSampler(lengths, batch_size=8, seed=8).order(1)
    sampler.set_epoch(1)
    assert list(sampler) == sampler.order(1)
    shuffled = list(range(340))
    rng.shuffle(shuffled)
    assert padding_share(first, lengths, 8) < 0.05 < padding_share(shuffled, lengths, 8)
    # The batches themselves come in random order, not longest first.
    maxima = [max(lengths[i] for i in first[j:j + 8]) for j in range(0, 336, 8)]
    assert maxima != sorted(maxima, reverse=True) and maxima != sorted(maxima)
    # Full batches first; the 4 left over form the last one, so the DataLoader cuts these batches.
    assert len({frozenset(first[j:j + 8]) for j in range(0, 336, 8)}) == 42
    assert set(first[336:]) == set(range(340)) - set(first[:336])


def _batch(tiny_model, n: int = 4, **collate: int):
    """A collated batch of demo examples with answers of different lengths."""
    from ftui.backends.local.train import _collate, _Rows, encode
    from ftui.backends.local.models import load_tokenizer
    from ftui.core.presets import load_preset

    from test_local_eval import demo_examples

    preset = load_preset("demo")
    tok = load_tokenizer(str(tiny_model))
    rows = [encode(tok, ex, preset.prompt, 256) for ex in demo_examples(n)]
    dataset = _Rows(rows)
    return _collate(tok.pad_token_id, **collate)([dataset[i] for i in range(n)])


def _lora(tiny_model):
    import peft
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                             init_lora_weights=False, task_type="CAUSAL_LM")
    return peft.get_peft_model(model, config)


@pytest.mark.parametrize("counted", [False, True], ids=["batch-mean", "num_items_in_batch"])
def test_loss_on_labelled_positions_only_equals_the_usual_loss_and_gradients(tiny_model, tmp_path, counted,
                                                                             monkeypatch):
    import torch
    import transformers

    from ftui.backends.local import train
    from ftui.backends.local.train import _trainer_class

    monkeypatch.setattr(train, "EAGER_ATTENTION_CELLS", 0)  # the attention both ways: sdpa (tested below)

    model = _lora(tiny_model).train()
    inputs = _batch(tiny_model)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = _trainer_class(transformers, model)(model=model, args=args)
    items = (inputs["labels"][:, 1:] != -100).sum() if counted else None
    calls = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw.get("logits_to_keep")), with_kwargs=True)

    def loss_and_grads(compute):
        model.zero_grad()
        loss = compute(model, dict(inputs), num_items_in_batch=items)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    ours, ours_grads = loss_and_grads(trainer.compute_loss)
    usual, usual_grads = loss_and_grads(lambda *a, **kw: transformers.Trainer.compute_loss(trainer, *a, **kw))
    hook.remove()
    assert calls[0] is not None and calls[0].dtype == torch.bool and calls[1] is None  # the two paths differ
    assert int(calls[0].sum()) == int((inputs["labels"][:, 1:] != -100).sum()) < inputs["labels"].numel() // 2
    assert ours == pytest.approx(usual, rel=1e-6)
    for a, b in zip(ours_grads, usual_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("counted", [False, True], ids=["batch-mean", "num_items_in_batch"])
@pytest.mark.parametrize("accumulated", [1, 2])
def test_micro_batches_give_the_whole_batch_loss_and_gradients(tiny_model, tmp_path, counted, accumulated):
    import torch
    import transformers

    from ftui.backends.local.train import _trainer_class, micro_batch_rows, micro_batches

    assert micro_batch_rows(8, 512, 2048) == 4 and micro_batch_rows(8, 256, 2048) == 8
    assert micro_batch_rows(8, 512, 0) == 8 and micro_batch_rows(3, 900, 512) == 1  # a row never splits
    model = _lora(tiny_model).train()
    inputs = _batch(tiny_model, n=5)
    width = inputs["input_ids"].shape[1]
    parts = micro_batches(inputs, 2 * width)
    assert [p["input_ids"].shape for p in parts] == [(2, width), (2, width), (1, width)]
    assert torch.equal(torch.cat([p["labels"] for p in parts]), inputs["labels"])
    items = (inputs["labels"][:, 1:] != -100).sum() if counted else None
    forwards = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: forwards.append(kw["input_ids"].shape[0]),
                                           with_kwargs=True)

    def loss_and_grads(budget):
        args = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                              gradient_accumulation_steps=accumulated)
        trainer = _trainer_class(transformers, model, micro_batch_tokens=budget)(model=model, args=args)
        trainer.current_gradient_accumulation_steps = accumulated
        model.zero_grad()
        forwards.clear()
        loss = trainer.training_step(model, dict(inputs), items)
        return loss.item(), list(forwards), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    whole, whole_forwards, whole_grads = loss_and_grads(0)
    split, split_forwards, split_grads = loss_and_grads(2 * width)
    hook.remove()
    assert whole_forwards == [5] and split_forwards == [2, 2, 1]
    assert split == pytest.approx(whole, rel=1e-6)
    for a, b in zip(split_grads, whole_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_short_cpu_batches_train_through_eager_attention_with_the_same_loss_and_gradients(tiny_model, tmp_path,
                                                                                        monkeypatch):
    import torch
    import transformers

    from ftui.backends.local import train
    from ftui.backends.local.train import EAGER_ATTENTION_CELLS, _trainer_class

    model = _lora(tiny_model).train()
    assert model.get_base_model().config._attn_implementation == "sdpa"
    inputs = _batch(tiny_model)
    rows, width = inputs["input_ids"].shape
    assert rows * width * width <= EAGER_ATTENTION_CELLS
    args = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = _trainer_class(transformers, model)(model=model, args=args)
    seen = []
    hooks = [layer.self_attn.register_forward_pre_hook(
        lambda m, a: seen.append(m.config._attn_implementation)) for layer in model.get_base_model().model.layers]

    def loss_and_grads():
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(inputs))
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    eager, eager_grads = loss_and_grads()
    monkeypatch.setattr(train, "EAGER_ATTENTION_CELLS", rows * width * width - 1)  # one cell too many
    fused, fused_grads = loss_and_grads()
    for h in hooks:
        h.remove()
    layers = len(hooks)
    assert seen == ["eager"] * layers + ["sdpa"] * layers
    assert model.get_base_model().config._attn_implementation == "sdpa"  # switched back
    assert eager == pytest.approx(fused, rel=1e-6)
    for a, b in zip(eager_grads, fused_grads):  # float32: the same sums in another order
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5 * float(b.abs().max()))


def test_eval_mode_and_return_outputs_keep_the_usual_path(tiny_model, tmp_path):
    import transformers

    from ftui.backends.local.train import _trainer_class

    model = _lora(tiny_model).eval()
    inputs = _batch(tiny_model, 2)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = _trainer_class(transformers, model)(model=model, args=args)
    loss, outputs = trainer.compute_loss(model, dict(inputs), return_outputs=True)
    assert outputs.logits.shape[:2] == inputs["input_ids"].shape  # validation's token accuracy needs them all


def test_validation_on_labelled_positions_gives_the_usual_loss_and_token_accuracy(tiny_model, tmp_path):
    import transformers

    from ftui.backends.local.train import _argmax, _token_accuracy, _trainer_class

    model = _lora(tiny_model).eval()
    inputs = _batch(tiny_model)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = _trainer_class(transformers, model)(model=model, args=args, compute_metrics=_token_accuracy,
                                                  preprocess_logits_for_metrics=_argmax)
    loss, counts, _ = trainer.prediction_step(model, dict(inputs), prediction_loss_only=False)
    usual_loss, logits, labels = transformers.Trainer.prediction_step(trainer, model, dict(inputs),
                                                                      prediction_loss_only=False)
    assert loss.item() == pytest.approx(usual_loss.item(), rel=1e-6)
    # Each example hands back (right, counted) tokens; the metric over them is the usual one.
    assert counts.shape == (4, 2) and counts[:, 1].tolist() == (inputs["labels"][:, 1:] != -100).sum(dim=1).tolist()
    usual = _token_accuracy(transformers.EvalPrediction(predictions=_argmax(logits, labels).numpy(),
                                                        label_ids=labels.numpy()))
    ours = trainer.compute_metrics(transformers.EvalPrediction(predictions=counts.numpy(), label_ids=None))
    assert ours == pytest.approx(usual) and trainer.preprocess_logits_for_metrics is None


def test_frozen_weights_in_bf16_give_identical_results_under_autocast(tiny_model):
    import copy

    import torch

    from ftui.backends.local.train import _frozen_weights_to_bf16

    model = _lora(tiny_model).train()
    stored = copy.deepcopy(model)
    converted = _frozen_weights_to_bf16(stored)
    inputs = _batch(tiny_model, 3)
    assert converted == 2 * 7  # every projection of both layers; the tied output layer stays fp32
    assert stored.get_output_embeddings().weight.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in stored.parameters() if p.requires_grad)  # LoRA: fp32

    def run(m):
        m.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=inputs["labels"])
        out.loss.backward()
        return out.logits, [p.grad for p in m.parameters() if p.requires_grad]

    (logits_a, grads_a), (logits_b, grads_b) = run(model), run(stored)
    assert torch.equal(logits_a, logits_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_batches_pad_to_a_multiple_of_32_and_the_padding_changes_no_loss(tiny_model):
    import torch
    import transformers

    from ftui.backends.local.train import PAD_MULTIPLE, _collate

    rows = [{"input_ids": [5] * n, "labels": [-100] * (n // 2) + [7] * (n - n // 2)} for n in (37, 20)]
    assert PAD_MULTIPLE == 32
    assert _collate(0)(rows)["input_ids"].shape == (2, 64)  # what training uses: the default
    assert _collate(0, max_length=50)(rows)["input_ids"].shape == (2, 50)  # not past max_length
    assert _collate(0, max_length=30)(rows)["input_ids"].shape == (2, 37)  # a longer row stays whole
    assert _collate(0, multiple=1)(rows)["input_ids"].shape == (2, 37)
    padded = _collate(0)(rows)
    assert padded["attention_mask"].sum().item() == 57 and (padded["labels"][:, 37:] == -100).all()

    # the same rows, padded to their longest or to 64: the same loss and gradients
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model).train()
    inputs = _batch(tiny_model, multiple=1)
    width = inputs["input_ids"].shape[1]
    wider = {k: torch.nn.functional.pad(v, (0, 32 - width % 32 + 32), value=-100 if k == "labels" else 0)
             for k, v in inputs.items()}

    def loss_and_grads(batch):
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    (a, ga), (b, gb) = loss_and_grads(inputs), loss_and_grads(wider)
    assert a == pytest.approx(b, rel=1e-5)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


def test_a_cpu_training_gives_freed_heap_memory_back_after_each_step():
    import ctypes

    import transformers

    from ftui.backends.local.train import _heap_trim_callback
    from ftui.core.machine import heap_trimmer

    trim = heap_trimmer()
    if trim is None:
        pytest.skip("not glibc: no malloc_trim")
    assert _heap_trim_callback(transformers, "cuda") == []
    [callback] = _heap_trim_callback(transformers, "cpu")
    assert isinstance(callback, transformers.TrainerCallback)

    # freed blocks kept in the middle of the heap (their neighbours live on) are handed back
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(2000)]  # under the mmap threshold: heap memory
    for b in blocks:
        ctypes.memset(b, 1, 64 * 1024)
    for b in blocks[:-1:2]:
        libc.free(b)
    before = _rss()
    callback.on_step_end(None, None, None)
    assert before - _rss() > 32 * 2**20  # about 62 MiB were free in holes
    for b in blocks[1::2]:
        libc.free(b)

    # from the start of training, a large block goes back to the system as soon as it is freed,
    # even with a live block after it. In a fresh process: here, earlier tests' freed heap could
    # serve the blocks (glibc takes free heap chunks before it considers a mapping).
    script = """
import ctypes, re, sys
from pathlib import Path
import transformers
from ftui.backends.local.train import _heap_trim_callback
rss = lambda: int(re.search(r"VmRSS:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(20 * 2**20))  # as a step's large frees do: glibc raises its threshold to 20 MiB
if sys.argv[1] == "fix":
    [callback] = _heap_trim_callback(transformers, "cpu")
    callback.on_train_begin(None, None, None)
big = [libc.malloc(9 * 2**20) for _ in range(2)]  # MMAP_THRESHOLD is 8 MiB
for b in big:
    ctypes.memset(b, 1, 9 * 2**20)
before = rss()
libc.free(big[0])
print(before - rss())
"""
    import subprocess
    import sys

    def given_back(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return int(out.stdout.split()[-1])

    assert given_back("fix") > 8 * 2**20
    assert given_back("none") < 2**20  # without it the freed block stays resident


def _rss() -> int:
    import re
    from pathlib import Path

    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def test_cpu_lora_dropout_is_dropout_drawn_from_16_bits_and_seeded(tiny_model):
    import peft
    import torch
    import transformers

    from ftui.backends.local.train import _cpu_lora_dropout

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    layers = model.config.num_hidden_layers
    model = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05,
                                                      target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    assert _cpu_lora_dropout(model) == 2 * layers
    drop = model.get_base_model().model.layers[0].self_attn.q_proj.lora_dropout["default"]
    assert type(drop).__name__ == "BitsDropout" and drop.threshold == 3277  # 0.05 * 2**16, rounded

    x = torch.randn(1000, 1000, requires_grad=True)
    drop.train()
    torch.manual_seed(7)
    out = drop(x)
    zeroed = out == 0
    assert abs(zeroed.float().mean().item() - 3277 / 2**16) < 0.002  # a million draws: ~0.0002 apart
    kept = ~zeroed
    torch.testing.assert_close(out[kept], x[kept] * (2**16 / (2**16 - 3277)), rtol=0, atol=0)
    rows_zeroed = zeroed.float().mean(dim=1)  # independent of position: every row near p
    assert rows_zeroed.min() > 0.02 and rows_zeroed.max() < 0.085
    grad = torch.randn_like(x)
    out.backward(grad)
    torch.testing.assert_close(x.grad, torch.where(kept, grad * drop.scale, 0.0), rtol=0, atol=0)
    torch.manual_seed(7)
    assert torch.equal(drop(x), out)  # the seeded generator: a resumed run draws the same masks
    drop.eval()
    assert drop(x) is x
    plain = peft.get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(tiny_model),
                                peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj"],
                                                task_type="CAUSAL_LM"))
    assert _cpu_lora_dropout(plain) == 0  # no dropout: nothing to replace
    # each of the four int16 lanes of a 64-bit draw is uniform: every fourth element drops as often
    lanes = zeroed.flatten().view(-1, 4).float().mean(dim=0)
    assert (lanes - 3277 / 2**16).abs().max() < 0.003


def test_the_micro_batch_budget_is_1024_positions_on_a_cpu_and_whole_batches_elsewhere(monkeypatch):
    from ftui.backends.local.train import micro_batch_budget
    from ftui.core.machine import CPU_MICRO_BATCH_TOKENS
    from ftui.core.config import ConfigError, LocalSettings

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert CPU_MICRO_BATCH_TOKENS == 1024
    assert micro_batch_budget(LocalSettings(), "cpu") == 1024
    assert micro_batch_budget(LocalSettings(), "cuda") == 0
    assert micro_batch_budget(LocalSettings(micro_batch_tokens=4096), "cpu") == 4096
    assert micro_batch_budget(LocalSettings(micro_batch_tokens=512), "cuda") == 512
    monkeypatch.setenv("WORLD_SIZE", "2")  # several processes: whole batches
    assert micro_batch_budget(LocalSettings(micro_batch_tokens=512), "cpu") == 0
    with pytest.raises(ConfigError, match="local.micro_batch_tokens"):
        LocalSettings(micro_batch_tokens=-1)
