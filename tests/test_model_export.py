"""``ftui export RUN --model adapter|merged|gguf`` on the tiny Llama: the card and the portable
adapter config, a merged folder that ``from_pretrained`` loads and answers as the peft model
does, a GGUF that transformers' GGUF loader reads back to the same answers, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftui.backends.local.export import export_model, portable_base
from ftui.backends.local.generate import generate_batched
from ftui.core.errors import ConfigError
from ftui.core.runs import Run

from conftest import run_cli
from test_local_eval import demo_prompts, lively_model, make_run  # noqa: F401 - lively_model is a fixture


@pytest.fixture(scope="module")
def exported(lively_model, tmp_path_factory):  # noqa: F811
    """A run with a random (non-zero) LoRA adapter on the lively tiny Llama, exported three ways."""
    import os

    import peft
    import transformers

    home = tmp_path_factory.mktemp("export-home")
    old = os.environ.get("FTUI_HOME")
    os.environ["FTUI_HOME"] = str(home)
    try:
        run = make_run(lively_model, n_test=6, n_train=4)
        base = transformers.AutoModelForCausalLM.from_pretrained(lively_model)
        transformers.set_seed(0)
        tuned = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                          init_lora_weights=False, task_type="CAUSAL_LM"))
        tuned.save_pretrained(run.adapter_path)
        transformers.AutoTokenizer.from_pretrained(lively_model).save_pretrained(run.adapter_path)
        written = {kind: export_model(run, kind, gguf_types=["f16", "q8_0"]) for kind in ("adapter", "merged", "gguf")}
        yield run, written
    finally:
        if old is None:
            del os.environ["FTUI_HOME"]
        else:
            os.environ["FTUI_HOME"] = old


def _reference_answers(run: Run, prompts) -> list[str]:
    """ftui's fine-tuned variant: the base with the run's adapter, as the eval loads it (unmerged)."""
    from ftui.backends.local.evaluate import _with_adapter
    from ftui.backends.local.models import load_model, load_tokenizer

    model = _with_adapter(load_model(run.spec.model), run.adapter_path, merge=False).eval()
    tokenizer = load_tokenizer(run.spec.model)
    return [t for t, _ in generate_batched(model, tokenizer, prompts, max_new_tokens=8, batch_size=4)]


def _answers(model, tokenizer, prompts) -> list[str]:
    return [t for t, _ in generate_batched(model.eval(), tokenizer, prompts, max_new_tokens=8, batch_size=4)]


def test_adapter_export_has_a_card_a_modelfile_and_names_its_base_portably(exported, lively_model):  # noqa: F811
    run, written = exported
    folder = run.dir / "export" / "adapter"
    names = {p.name for p in written["adapter"]}
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "Modelfile"} <= names
    cfg = json.loads((folder / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(Path(lively_model).resolve())  # a local model: its folder
    card = (folder / "README.md").read_text()
    assert "[More Information Needed]" not in card
    assert f"base_model: {Path(lively_model).resolve()}" in card and "library_name: peft" in card
    assert "AutoPeftModelForCausalLM.from_pretrained" in card
    assert f"--enable-lora --lora-modules ftui-{run.id}={folder}" in card
    assert "| lora_r | 8 |" in card and "num_virtual_tokens" not in card  # the method's settings only
    modelfile = (folder / "Modelfile").read_text()
    assert "ADAPTER ." in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "<|im_start|>{{ .Role }}" in modelfile and "SYSTEM" in modelfile
    assert set(run.exports()) == {"adapter", "merged", "gguf"}


def test_the_embedded_model_is_named_by_its_hub_id_and_a_hub_id_stays():
    assert portable_base("smollm2-135m") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert portable_base("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"


def test_merged_loads_with_from_pretrained_and_answers_as_the_adapter_does(exported):
    import transformers

    run, _ = exported
    folder = run.dir / "export" / "merged"
    prompts = demo_prompts(6)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    got = _answers(model, tokenizer, prompts)
    assert got == _reference_answers(run, prompts)
    assert len(set(got)) > 1  # the lively model's answers vary: the comparison means something
    assert "AutoModelForCausalLM.from_pretrained" in (folder / "README.md").read_text()
    assert (folder / "Modelfile").read_text().splitlines()[2] == "FROM ."


def test_gguf_f16_reads_back_through_transformers_with_the_same_answers(exported):
    import gguf
    import transformers

    run, written = exported
    folder = run.dir / "export" / "gguf"
    f16 = next(p for p in written["gguf"] if p.name.endswith("-f16.gguf"))
    q8 = next(p for p in written["gguf"] if p.name.endswith("-q8_0.gguf"))
    reader = gguf.GGUFReader(q8)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["blk.0.attn_norm.weight"] == "F32"
    assert "output.weight" not in types  # tied embeddings, as llama.cpp writes them
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert reader.fields["tokenizer.ggml.pre"].contents() == "smollm"
    tokenizer = transformers.AutoTokenizer.from_pretrained(run.dir / "export" / "merged")
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    assert reader.fields["tokenizer.ggml.tokens"].contents() == [t for t, _ in vocab]
    assert reader.fields["tokenizer.ggml.eos_token_id"].contents() == tokenizer.eos_token_id
    assert "<|im_start|>" in reader.fields["tokenizer.chat_template"].contents()
    prompts = demo_prompts(6)
    # (the tokenizer read back from GGUF too: tests/test_embedded_export.py, on the real model)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=f16.name)
    assert _answers(model, tokenizer, prompts) == _reference_answers(run, prompts)
    assert f"FROM ./{f16.name}" in (folder / "Modelfile").read_text()
    assert f"llama-server -m {f16}" in (folder / "README.md").read_text()


def test_a_model_that_is_not_a_llama_is_refused_for_gguf(tmp_path):
    from ftui.backends.local.gguf_export import gguf_problem, write_gguf

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    assert "Llama-family" in gguf_problem(tmp_path) and "GPT2LMHeadModel" in gguf_problem(tmp_path)
    with pytest.raises(ConfigError, match="LlamaForCausalLM"):
        write_gguf(tmp_path, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_prefix_tuning_cannot_be_merged_and_full_has_no_adapter(exported, monkeypatch):
    import dataclasses

    run, _ = exported
    for method, kind, words in (("prefix", "merged", "nothing to merge"), ("full", "adapter", "no adapter")):
        hp = dataclasses.replace(run.spec.hyperparameters, method=method)
        spec = dataclasses.replace(run.spec, hyperparameters=hp)
        monkeypatch.setattr(Run, "spec", property(lambda self, spec=spec: spec))
        with pytest.raises(ConfigError, match=words):
            export_model(run, kind)


def test_cli_refuses_bad_model_export_requests_with_exit_2(exported, monkeypatch):
    run, _ = exported
    monkeypatch.setenv("FTUI_HOME", str(run.dir.parent.parent))
    both = run_cli("export", run.id, "--model", "merged", "--format", "md")
    assert both.returncode == 2 and "give one of them" in both.stderr and "Traceback" not in both.stderr
    typ = run_cli("export", run.id, "--model", "merged", "--gguf-type", "q8_0")
    assert typ.returncode == 2 and "--gguf-type goes with --model gguf" in typ.stderr
    inside = run_cli("export", run.id, "--model", "adapter", "--out", str(run.adapter_path / "x"))
    assert inside.returncode == 2 and "inside the run's trained weights" in inside.stderr
    assert "Traceback" not in inside.stderr
    nowhere = run_cli("export", run.id, "--model", "adapter", "--out", "/proc/forbidden/x")
    assert nowhere.returncode == 2 and "/proc/forbidden/x" in nowhere.stderr and "Traceback" not in nowhere.stderr
