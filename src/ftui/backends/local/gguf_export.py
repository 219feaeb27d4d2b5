"""A transformers Llama folder written as one GGUF file (f32, f16 or q8_0) with the ``gguf`` package.

What it writes follows llama.cpp's ``convert_hf_to_gguf.py`` for ``LlamaForCausalLM``, checked
against the embedded model's own GGUF (``models.embedded_gguf()``): the ``llama.*`` hyperparameter
keys, the tokenizer as ``gpt2`` byte-level BPE (tokens, token types, merges, special ids, chat
template), tensor names from gguf's own name map, and the q/k projection rows permuted the way
llama.cpp's rotary embedding wants them (transformers' GGUF loader undoes exactly this in
``LlamaTensorProcessor._reverse_permute_weights``). Norms stay f32; q8_0 quantizes every 2-D
weight whose rows split into 32-wide blocks (the rest fall back to f16, as llama.cpp does).

Only what this module can write faithfully is accepted: other architectures, rotary scalings
other than none/linear, biases, and tokenizers that are not byte-level BPE are refused with the
reason, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ftui.core.errors import ConfigError

GGUF_TYPES = ("f16", "q8_0", "f32")
"""The tensor types ``--gguf-type`` offers; the first is the default."""

KNOWN_PRE_TOKENIZERS = {
    # sha256 of the token list in id order -> llama.cpp's pre-tokenizer name. The embedded
    # SmolLM2 (and the tests' tiny Llama, which borrows its tokenizer) is "smollm".
    "d1f2ce856b324081b621d9e2e8dbd22879f462329f3fd4aa39fa758dddb2ce55": "smollm",
}


def gguf_problem(folder: Path) -> str:
    """Why ``folder`` cannot be written as GGUF here ("" when it can)."""
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{folder}: no readable config.json ({exc})"
    archs = cfg.get("architectures") or []
    if cfg.get("model_type") != "llama" or archs != ["LlamaForCausalLM"]:
        return (f"GGUF export supports Llama-family models (LlamaForCausalLM) only; this model is "
                f"{', '.join(archs) or cfg.get('model_type') or 'unknown'} (model_type "
                f"{cfg.get('model_type')!r}). Export --model merged and convert it with llama.cpp's "
                "convert_hf_to_gguf.py, which knows more architectures")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        return "GGUF export: this Llama has attention or MLP biases, which ftui's GGUF writer does not write"
    rope = _rope(cfg)
    if rope.get("rope_type", "default") not in ("default", "linear"):
        return (f"GGUF export: rotary scaling {rope.get('rope_type')!r} is not written by ftui's GGUF writer "
                "(only none and linear); convert the merged folder with llama.cpp's convert_hf_to_gguf.py")
    tok = folder / "tokenizer.json"
    try:
        model = json.loads(tok.read_text(encoding="utf-8")).get("model", {})
    except (OSError, ValueError):
        return f"GGUF export needs the tokenizer as {tok} (a fast tokenizer); there is none"
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        return ("GGUF export writes byte-level BPE tokenizers (GPT-2 style, as SmolLM2 and Llama 3 use); this "
                f"one is {model.get('type')}{' with byte fallback' if model.get('byte_fallback') else ''}: "
                "convert the merged folder with llama.cpp's convert_hf_to_gguf.py")
    return ""


def _rope(cfg: dict[str, Any]) -> dict[str, Any]:
    """transformers 5 writes ``rope_parameters`` (theta and type); older configs rope_theta and rope_scaling."""
    rope = dict(cfg.get("rope_parameters") or {})
    scaling = cfg.get("rope_scaling") or {}
    rope.setdefault("rope_theta", cfg.get("rope_theta", 10000.0))
    if scaling:
        rope.setdefault("rope_type", scaling.get("rope_type") or scaling.get("type"))
        rope.setdefault("factor", scaling.get("factor"))
    return rope


def permute(weights: Any, n_head: int, n_head_kv: int | None = None) -> Any:
    """llama.cpp's row order for q/k projections (its rotary embedding pairs rows differently)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def write_gguf(folder: Path, out: Path, *, qtype: str = "f16", name: str = "") -> Path:
    """Write the model in ``folder`` (config.json, safetensors, tokenizer) to ``out`` as GGUF."""
    import gguf  # heavy-ish: only when exporting
    import numpy as np
    import torch  # heavy: reading the weights (bf16 safetensors have no numpy type)
    from safetensors import safe_open

    if qtype not in GGUF_TYPES:
        raise ConfigError(f"--gguf-type: unknown type {qtype!r}; choose from {', '.join(GGUF_TYPES)}")
    problem = gguf_problem(folder)
    if problem:
        raise ConfigError(problem)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    n_layers, n_head = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    hidden = cfg["hidden_size"]
    head_dim = cfg.get("head_dim") or hidden // n_head
    rope = _rope(cfg)

    arch = gguf.MODEL_ARCH.LLAMA
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or folder.name)
    writer.add_block_count(n_layers)
    writer.add_context_length(cfg.get("max_position_embeddings", 2048))
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(cfg["vocab_size"])
    writer.add_rope_dimension_count(head_dim)
    if head_dim != hidden // n_head:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if rope.get("rope_type") == "linear" and rope.get("factor"):
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[qtype]
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_tokenizer(writer, folder, cfg["vocab_size"])

    names = gguf.get_tensor_name_map(arch, n_layers)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ConfigError(f"{folder}: no *.safetensors weights to write")
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                if key.endswith("rotary_emb.inv_freq"):
                    continue
                if key == "lm_head.weight" and cfg.get("tie_word_embeddings"):
                    continue  # tied: llama.cpp (and transformers' loader) use token_embd
                gname = names.get_name(key, try_suffixes=(".weight", ".bias"))
                if gname is None:
                    raise ConfigError(f"GGUF export: no GGUF name for tensor {key!r} of {path.name}")
                data = f.get_tensor(key).to(torch.float32).numpy()
                if key.endswith("q_proj.weight"):
                    data = permute(data, n_head, n_head)
                elif key.endswith("k_proj.weight"):
                    data = permute(data, n_head, n_kv)
                _add_tensor(writer, gguf, np, gname, data, qtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _add_tensor(writer: Any, gguf: Any, np: Any, name: str, data: Any, qtype: str) -> None:
    if data.ndim <= 1 or qtype == "f32":
        writer.add_tensor(name, data.astype(np.float32))
        return
    if qtype == "q8_0" and data.shape[-1] % 32 == 0:
        q = gguf.GGMLQuantizationType.Q8_0
        writer.add_tensor(name, gguf.quants.quantize(data.astype(np.float32), q), raw_dtype=q)
        return
    writer.add_tensor(name, data.astype(np.float16))


def _add_tokenizer(writer: Any, folder: Path, vocab_size: int) -> None:
    """Byte-level BPE as llama.cpp's converter writes it (``tokenizer.ggml.model`` gpt2)."""
    import gguf
    import transformers  # heavy: the tokenizer's vocabulary and added tokens

    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    by_id = {i: t for t, i in tok.get_vocab().items()}
    added = {i: t for i, t in tok.added_tokens_decoder.items()}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    fingerprint = hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()
    writer.add_tokenizer_model("gpt2")
    # llama.cpp picks its pre-tokenizer regex by this name; "default" works, less exactly, for
    # a vocabulary it does not know.
    writer.add_tokenizer_pre(KNOWN_PRE_TOKENIZERS.get(fingerprint, "default"))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(tokens))
    special.add_to_gguf(writer, quiet=True)
    # SpecialVocab reads the ids from tokenizer_config.json/config.json; the tokenizer object
    # knows them for certain (a GGUF-born tokenizer's config names tokens, not ids).
    for kind in ("bos", "eos", "unk", "pad"):
        tid = getattr(tok, f"{kind}_token_id", None)
        if tid is not None and kind not in special.special_token_ids:
            getattr(writer, f"add_{kind}_token_id")(int(tid))
    if "bos" not in special.add_special_token:
        writer.add_add_bos_token(False)
    if special.chat_template is None and getattr(tok, "chat_template", None):
        writer.add_chat_template(tok.chat_template)
