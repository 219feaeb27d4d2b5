from __future__ import annotations

import json

import pytest

from ftui.backends.local.models import check_fit, load_model, load_tokenizer
from ftui.core.errors import ConfigError, OfflineError


def test_a_model_too_big_for_this_machine_is_refused_with_numbers(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"hidden_size": 8192, "num_hidden_layers": 80, "vocab_size": 128256, "intermediate_size": 28672}))
    with pytest.raises(ConfigError, match=r"needs about \d+\.\d GiB .* available RAM"):
        check_fit(str(tmp_path), device="cpu", dtype="float32", quantization="none")


def test_hub_model_offline_fails_in_one_line(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(OfflineError, match="not a local folder, and the hub could not provide it"):
        load_tokenizer("someone/no-such-model")


def test_quantization_needs_cuda(tiny_model):
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        load_model(str(tiny_model), quantization="4bit", device="cpu")


def _untied_wide_heads(folder):
    """A Llama whose head width is not hidden/heads and whose output layer has its own weights:
    the two things the tiny model's config does not exercise."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 512, "hidden_size": 64,
        "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 24, "tie_word_embeddings": False}))
    return folder


@pytest.mark.parametrize("model", ["tiny", "untied-wide-heads"])
@pytest.mark.parametrize("method", ["lora", "dora", "ia3", "prefix", "full"])
def test_memory_estimate_counts_what_peft_trains(method, model, tiny_model, tmp_path):
    """The estimate's trainable count, from config.json alone, is the count peft reports for the
    model built from that config with each method's peft config (the local backend's)."""
    import torch
    import transformers
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, get_peft_model

    from ftui.core.config import LocalSettings
    from ftui.core.machine import estimate_fit, model_shape

    hp = LocalSettings(method=method, lora_r=4, target_modules=("q_proj", "v_proj", "o_proj", "down_proj"),
                       num_virtual_tokens=7)
    if model == "tiny":
        folder = tiny_model
        base = transformers.AutoModelForCausalLM.from_pretrained(folder)
    else:
        folder = _untied_wide_heads(tmp_path / "m")
        with torch.device("meta"):  # shapes only: no weights are made
            base = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.from_pretrained(folder))
    peft_config = {
        "lora": lambda: LoraConfig(r=hp.lora_r, target_modules=list(hp.target_modules), task_type="CAUSAL_LM"),
        "dora": lambda: LoraConfig(r=hp.lora_r, target_modules=list(hp.target_modules), use_dora=True,
                                   task_type="CAUSAL_LM"),
        "ia3": lambda: IA3Config(task_type="CAUSAL_LM"),  # peft's default modules for Llama
        "prefix": lambda: PrefixTuningConfig(num_virtual_tokens=hp.num_virtual_tokens, task_type="CAUSAL_LM"),
    }
    if method == "full":
        trainable, total = sum(p.numel() for p in base.parameters() if p.requires_grad), None
    else:
        trainable, total = get_peft_model(base, peft_config[method]()).get_nb_trainable_parameters()
    shape = model_shape(str(folder))
    est = estimate_fit(shape, method=method, device="cpu", precision="fp32", quantization="none",
                       lora_r=hp.lora_r, target_modules=hp.target_modules, num_virtual_tokens=hp.num_virtual_tokens,
                       batch_size=1, max_length=16, available=None)
    assert est.trainable_params == trainable
    if total is not None:  # peft's total holds the frozen base once, plus what it added
        assert shape.params + trainable == total
