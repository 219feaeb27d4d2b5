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
