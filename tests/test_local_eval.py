"""Local eval: batched greedy generation and ``evaluate_run`` on a tiny Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftui.backends.local import evaluate as evaluate_mod
from ftui.backends.local.evaluate import choose_shots, evaluate_run
from ftui.backends.local.generate import generate_batched, generate_one_at_a_time
from ftui.core.errors import ConfigError
from ftui.core.events import EventWriter, read_events
from ftui.core.examples import Example
from ftui.core.presets import load_preset, sample_path
from ftui.core.prompts import render_messages
from ftui.core.runs import create_run

DEMO = load_preset("demo")


def demo_examples(n: int, start: int = 0) -> list[Example]:
    with open(sample_path(DEMO), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][start:start + n]
    return [Example(fields={"question": r["question"], "context": r["context"]}, reference=r["answer"], line=i + 1)
            for i, r in enumerate(rows, start=start)]


def demo_prompts(n: int) -> list[list[dict]]:
    """Prompts of varied lengths, deliberately not sorted by length (so sorting reorders them)."""
    prompts = [render_messages(ex, DEMO.prompt) for ex in demo_examples(n)]
    for i in range(0, n, 3):  # some much longer than the rest: more left padding in their batch
        prompts[i][-1]["content"] += " Please answer carefully." * (1 + i % 4)
    return prompts


@pytest.fixture(scope="module")
def lively_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny Llama with large random weights: its greedy outputs vary with the prompt.

    The stock tiny model's small init makes it echo the last prompt token (a newline) forever,
    which would make every comparison below pass trivially.
    """
    import torch
    import transformers

    folder = tmp_path_factory.mktemp("lively")
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and "embed" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def loaded(lively_model):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(lively_model).eval()
    return model, transformers.AutoTokenizer.from_pretrained(lively_model)


def make_run(model: Path, *, n_test: int = 6, n_train: int = 10, k: int = 2, limit: int = 0, batch_size: int = 4):
    spec = {
        "preset": "demo", "task": "sql", "task_options": {},
        "prompt": {"system": DEMO.prompt.system, "user": DEMO.prompt.user},
        "split": {"seed": 7, "val": 0, "test": n_test},
        "backend": "local", "model": str(model),
        "hyperparameters": {"quantization": "none"},
        "eval": {"max_new_tokens": 8, "k": k, "limit": limit, "batch_size": batch_size},
    }
    splits = {"train": demo_examples(n_train, start=100), "val": [], "test": demo_examples(n_test)}
    return create_run(label="eval-test", spec=spec, splits=splits)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_batched_equals_one_at_a_time_in_input_order(loaded):
    model, tok = loaded
    prompts = demo_prompts(12)
    lengths = [len(tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True)) for p in prompts]
    assert lengths != sorted(lengths, reverse=True) and len(set(lengths)) > 6  # sorting and padding happen
    progress = []
    batched = generate_batched(model, tok, prompts, max_new_tokens=12, batch_size=5,
                               on_progress=lambda done, total: progress.append((done, total)))
    single = generate_one_at_a_time(model, tok, prompts, max_new_tokens=12)
    assert [text for text, _ in batched] == [text for text, _ in single]
    assert len({text for text, _ in batched}) >= 10  # outputs depend on the prompt, so order is checked
    assert progress == [(5, 12), (10, 12), (12, 12)]
    assert all(latency > 0 for _, latency in batched)
    assert tok.padding_side == "right"  # left padding did not leak into the caller's tokenizer


def test_evaluate_base_and_kshot_writes_records_metrics_and_events(lively_model, monkeypatch):
    run = make_run(lively_model, n_test=6, k=2)
    seen: dict[int, list] = {}
    real = evaluate_mod.generate_batched

    def spy(model, tokenizer, prompts, **kw):
        seen[len(seen)] = prompts
        return real(model, tokenizer, prompts, **kw)

    loads = []
    real_load = evaluate_mod.load_model
    monkeypatch.setattr(evaluate_mod, "generate_batched", spy)
    monkeypatch.setattr(evaluate_mod, "load_model", lambda *a, **kw: loads.append(a) or real_load(*a, **kw))
    with EventWriter(run.events_path) as events:
        results = evaluate_run(run, variants=("base", "kshot"), events=events)
    assert set(results) == {"base", "kshot"}
    assert len(loads) == 1  # one base model serves both variants

    assert len(seen) == 1  # one running batch for both variants, base's prompts first
    base_prompts, kshot_prompts = seen[0][:len(seen[0]) // 2], seen[0][len(seen[0]) // 2:]
    assert all([m["role"] for m in p] == ["system", "user"] for p in base_prompts)
    assert all([m["role"] for m in p] == ["system", "user", "assistant", "user", "assistant", "user"]
               for p in kshot_prompts)
    assert len({json.dumps(p[1:5]) for p in kshot_prompts}) == 1  # the same shots for every example
    train = run.examples("train")
    shots = json.loads((run.dir / "eval" / "kshot" / "metrics.json").read_text())["shots"]
    assert [kshot_prompts[0][2]["content"], kshot_prompts[0][4]["content"]] == [train[i].reference for i in shots]

    test = run.examples("test")
    for variant in ("base", "kshot"):
        records = read_jsonl(run.dir / "eval" / variant / "predictions.jsonl")
        assert len(records) == len(test)
        for r, ex in zip(records, test):
            assert {"input", "reference", "output", "valid", "exact", "error", "latency_s"} <= set(r)
            assert r["reference"] == ex.reference and ex.fields["question"] in r["input"]
            assert r["latency_s"] > 0
        metrics = json.loads((run.dir / "eval" / variant / "metrics.json").read_text())
        assert metrics["n"] == len(test) and metrics["metrics"] == results[variant]
        assert metrics["model"] == str(lively_model) and metrics["max_new_tokens"] == 8
    evs = [e for e in read_events(run.events_path) if e["type"] == "eval"]
    assert [(e["variant"], e["n"], e["metrics"]) for e in evs] == [
        ("base", 6, results["base"]), ("kshot", 6, results["kshot"])]
    assert sum(e["type"] == "log" for e in read_events(run.events_path)) == 2


def test_shot_choice_is_deterministic_and_seeded(lively_model):
    assert choose_shots(50, 3, seed=7) == choose_shots(50, 3, seed=7) != choose_shots(50, 3, seed=8)
    assert choose_shots(2, 5, seed=7) == [0, 1]
    run = make_run(lively_model, n_test=2, k=3)
    shots = []
    for _ in range(2):
        evaluate_run(run, variants=("kshot",))
        shots.append(json.loads((run.dir / "eval" / "kshot" / "metrics.json").read_text())["shots"])
    assert shots[0] == shots[1] == choose_shots(10, 3, seed=7) and len(shots[0]) == 3


def test_limit_comes_from_the_argument_then_the_spec(lively_model):
    run = make_run(lively_model, n_test=5, limit=3)
    evaluate_run(run, variants=("base",))
    assert len(read_jsonl(run.dir / "eval" / "base" / "predictions.jsonl")) == 3
    evaluate_run(run, variants=("base",), limit=2)
    assert len(read_jsonl(run.dir / "eval" / "base" / "predictions.jsonl")) == 2


def test_finetuned_without_adapter_is_a_config_error(lively_model):
    run = make_run(lively_model, n_test=2)
    with pytest.raises(ConfigError, match="no trained weights yet"):
        evaluate_run(run, variants=("base", "finetuned"))
    assert not (run.dir / "eval").exists()  # refused before spending time on base


def test_finetuned_merged_adapter_matches_unmerged(lively_model, loaded, monkeypatch):
    import peft
    import torch
    import transformers

    run = make_run(lively_model, n_test=6)
    torch.manual_seed(0)
    base = transformers.AutoModelForCausalLM.from_pretrained(lively_model)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    tuned = peft.get_peft_model(base, config)
    tuned.save_pretrained(run.dir / "adapter")

    used = []
    real = evaluate_mod._with_adapter
    monkeypatch.setattr(evaluate_mod, "_with_adapter", lambda *a, **kw: used.append(real(*a, **kw)) or used[-1])
    results = evaluate_run(run, variants=("base", "finetuned"))
    assert set(results) == {"base", "finetuned"}
    assert len(used) == 1 and not isinstance(used[0], peft.PeftModel)  # merged into plain weights
    base_out = [r["output"] for r in read_jsonl(run.dir / "eval" / "base" / "predictions.jsonl")]
    tuned_out = [r["output"] for r in read_jsonl(run.dir / "eval" / "finetuned" / "predictions.jsonl")]
    assert base_out != tuned_out  # the adapter was applied

    _, tok = loaded
    unmerged = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(lively_model), run.dir / "adapter").eval()
    prompts = [render_messages(ex, DEMO.prompt) for ex in run.examples("test")]
    assert [t for t, _ in generate_one_at_a_time(unmerged, tok, prompts, max_new_tokens=8)] == tuned_out


def test_stop_request_leaves_no_metrics_for_the_unfinished_variant(lively_model):
    run = make_run(lively_model, n_test=6, batch_size=2)
    asked = []

    def should_stop() -> bool:  # false at the variant's start, true after its first batch
        asked.append(1)
        return len(asked) > 1

    with EventWriter(run.events_path) as events:
        assert evaluate_run(run, variants=("base", "kshot"), should_stop=should_stop, events=events) == {}
    assert not (run.dir / "eval" / "base" / "metrics.json").exists()
    assert not (run.dir / "eval" / "kshot").exists()
    assert not [e for e in read_events(run.events_path) if e["type"] == "eval"]
    assert len(asked) == 2  # asked once before the variant, once after the first of three batches

    # Now the stop comes after base's last batch (base and k-shot decode together: 12 prompts,
    # asked after each batch of 2 but the last, then before k-shot): base is complete and kept.
    asked.clear()
    results = evaluate_run(run, variants=("base", "kshot"), should_stop=lambda: asked.append(1) or len(asked) > 6)
    assert set(results) == {"base"} and (run.dir / "eval" / "base" / "metrics.json").exists()
    assert not (run.dir / "eval" / "kshot").exists()


def test_base_and_kshot_decode_together_each_with_its_own_answers_and_time(lively_model, loaded, monkeypatch):
    import json

    run = make_run(lively_model, n_test=6, k=2, batch_size=8)
    calls = []
    real = evaluate_mod.generate_batched
    monkeypatch.setattr(evaluate_mod, "generate_batched",
                        lambda model, tok, prompts, **kw: calls.append((len(prompts), kw.get("groups")))
                        or real(model, tok, prompts, **kw))
    with EventWriter(run.events_path) as events:
        results = evaluate_run(run, variants=("base", "kshot"), events=events)
    assert set(results) == {"base", "kshot"}
    assert calls == [(12, [0] * 6 + [1] * 6)]  # one running batch for both variants
    model, tok = loaded
    shots = [run.examples("train")[i] for i in choose_shots(10, 2, seed=run.spec.split.seed)]
    for variant, kw in (("base", {}), ("kshot", {"shots": shots})):
        prompts = [render_messages(ex, DEMO.prompt, **kw) for ex in run.examples("test")]
        expected = [t for t, _ in generate_one_at_a_time(model, tok, prompts, max_new_tokens=8)]
        records = read_jsonl(run.dir / "eval" / variant / "predictions.jsonl")
        assert [r["output"] for r in records] == expected
        metrics = json.loads((run.dir / "eval" / variant / "metrics.json").read_text())
        # Each variant's own share of the time, not the whole call's (base) or nothing (k-shot).
        assert metrics["decoded_with"] == [{"base": "kshot", "kshot": "base"}[variant]]
        assert abs(metrics["duration_s"] - sum(r["latency_s"] for r in records)) < 0.01
        assert metrics["duration_s"] > 0
    progress = [e for e in read_events(run.events_path) if e["type"] == "eval_progress"]
    assert {e["variant"] for e in progress} >= {"base", "kshot"}


def test_a_large_batch_still_reports_progress_every_few_examples(loaded, monkeypatch):
    """Progress (and the stop check behind it) comes every PROGRESS_EVERY examples at most, not
    once a batch: with the demo's 128 rows a batch would be the whole eval."""
    from ftui.backends.local import generate as generate_mod

    model, tok = loaded
    monkeypatch.setattr(generate_mod, "PROGRESS_EVERY", 4)
    progress = []
    generate_batched(model, tok, demo_prompts(10), max_new_tokens=2, batch_size=128,
                     on_progress=lambda done, total: progress.append((done, total)))
    assert progress == [(4, 10), (8, 10), (10, 10)]
