"""A tiny Llama built from a config, with the embedded model's tokenizer: trains in seconds."""

from __future__ import annotations

from pathlib import Path


def build_tiny_model(folder: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer, 64-wide Llama plus tokenizer into ``folder`` (once)."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    import transformers

    from ftui.backends.local.models import load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
        # Wide enough initial weights that logits can move: with the default 0.02 the
        # final norm caps every logit near zero and the loss cannot leave log(vocab).
        initializer_range=0.3,
    )
    model = transformers.LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
