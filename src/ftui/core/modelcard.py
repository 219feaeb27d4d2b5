"""The text beside an exported model: its card (README.md), an Ollama ``Modelfile`` and the
commands that serve it (vLLM, llama.cpp, Ollama). Pure text from the run's summary data
(``core.export.summary_data``) and a few facts the exporter knows; nothing is loaded here.

``exports.json`` in the run directory records where each kind of model export went
(``Run.exports``, ``Run.where``), so ``ftui show``, the Eval screen and ``summary.md`` can say
where the model is.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ftui.core.runs import Run, write_json_atomic

KINDS = ("adapter", "merged", "gguf")
"""What ``ftui export RUN --model KIND`` writes: the peft adapter with its card, the adapter
merged into its base as a transformers folder, or that merged model as GGUF."""

EXPORTS_FILE = "exports.json"


@dataclass(frozen=True)
class Exported:
    """One model export, as the card and the serving recipes describe it."""

    kind: str
    """adapter, merged or gguf (or ``trained``: the run's own adapter/ or model/ folder)."""
    folder: Path
    base: str
    """The base model as others can find it: a hub id, or a local folder."""
    base_local: str = ""
    """Where this machine has the base (a folder), for commands that need its files."""
    method: str = "lora"
    lora_r: int | None = None
    files: Sequence[str] = field(default_factory=tuple)
    """For gguf: the .gguf file names written, the first one the Modelfile's."""
    chat_template: str = ""


def ollama_name(run_id: str) -> str:
    """A model name Ollama accepts: lowercase letters, digits, ``-``, ``_`` and ``.``."""
    return "ftui-" + re.sub(r"[^a-z0-9._-]+", "-", run_id.lower()).strip("-")


def modelfile(ex: Exported, *, system: str) -> str:
    """An Ollama Modelfile for the export: FROM (and ADAPTER), TEMPLATE, SYSTEM, stops, greedy."""
    lines = ["# Ollama, from this folder: ollama create NAME -f Modelfile, then ollama run NAME", ""]
    if ex.kind == "gguf":
        lines.append(f"FROM ./{ex.files[0]}")
        lines += [f"# or: FROM ./{f}" for f in ex.files[1:]]
    elif ex.kind == "merged" or ex.method == "full":
        lines.append("FROM .")
    else:
        lines.append(f"FROM {ex.base_local or ex.base}")
        if ex.base_local and ex.base_local != ex.base:
            lines.append(f"# the base model's safetensors folder on this machine; elsewhere a folder of {ex.base}")
        lines.append("ADAPTER .")
    template, stops = _ollama_template(ex.chat_template)
    if template:
        lines += ["", f'TEMPLATE """{template}"""']
    else:
        lines += ["", "# TEMPLATE: the chat template is not one ftui translates; Ollama reads the model's own"]
    if system:
        lines += ["", f'SYSTEM """{system}"""']
    lines.append("")
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def _ollama_template(chat_template: str) -> tuple[str, list[str]]:
    """The Go template Ollama needs for the chat formats ftui knows (ChatML, Llama 3)."""
    if "<|im_start|>" in chat_template:
        return ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
                "{{ end }}<|im_start|>assistant\n", ["<|im_end|>", "<|im_start|>"])
    if "<|start_header_id|>" in chat_template:
        return ("{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
                "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
                ["<|eot_id|>"])
    return "", []


def serve_lines(ex: Exported, run_id: str) -> list[str]:
    """The serving section of the card: vLLM, llama.cpp and Ollama command lines."""
    name = ollama_name(run_id)
    where = str(ex.folder)
    out = ["## Serve it", ""]
    if ex.kind == "gguf":
        first = f"{where}/{ex.files[0]}"
        out += ["llama.cpp:", "", "```sh", f"llama-cli -m {first} -cnv --temp 0",
                f"llama-server -m {first} --port 8080", "```", "",
                "vLLM (GGUF support is experimental; the tokenizer comes from the base):", "", "```sh",
                f"vllm serve {first} --tokenizer {ex.base} --served-model-name {name}", "```", ""]
    elif ex.kind == "merged" or ex.method == "full":
        out += ["vLLM:", "", "```sh", f"vllm serve {where} --served-model-name {name}", "```", "",
                "llama.cpp needs GGUF: `ftui export RUN --model gguf` writes it (or llama.cpp's "
                f"`python convert_hf_to_gguf.py {where} --outtype f16`).", ""]
    elif ex.method == "lora":
        rank = f" --max-lora-rank {ex.lora_r}" if ex.lora_r and ex.lora_r > 16 else ""
        out += ["vLLM (the base model with this adapter; ask for model `" + name + "`):", "", "```sh",
                f"vllm serve {ex.base} --enable-lora --lora-modules {name}={where}{rank}", "```", "",
                "llama.cpp needs GGUF: `ftui export RUN --model gguf` writes the merged model as one file.", ""]
    else:
        out += [f"vLLM serves LoRA adapters only; this is a {ex.method} adapter: export `--model merged` "
                "(or `gguf`) to serve it." if ex.method != "prefix" else
                "vLLM and llama.cpp cannot serve a prefix-tuning adapter; load it with peft (above).", ""]
    if ex.kind != "adapter" or ex.method == "lora":
        out += ["Ollama (the `Modelfile` in this folder):", "", "```sh", f"cd {where}",
                f"ollama create {name} -f Modelfile", f"ollama run {name}", "```", ""]
    return out


def load_lines(ex: Exported) -> list[str]:
    """How to load the export in Python."""
    where = str(ex.folder)
    if ex.kind == "gguf":
        return ["## Load it", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                "", f'folder, file = "{where}", "{ex.files[0]}"',
                "model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file)  # dequantized to float32",
                "tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)", "```", ""]
    if ex.kind == "merged" or ex.method == "full":
        return ["## Load it", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                f'model = AutoModelForCausalLM.from_pretrained("{where}")',
                f'tokenizer = AutoTokenizer.from_pretrained("{where}")', "```", ""]
    return ["## Load it", "", "```python", "from peft import AutoPeftModelForCausalLM",
            "from transformers import AutoTokenizer", "",
            f"# adapter_config.json names the base as {ex.base}: it is fetched from there",
            f'model = AutoPeftModelForCausalLM.from_pretrained("{where}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{where}")',
            "# or on a base you have already loaded: PeftModel.from_pretrained(base_model, folder)",
            *(["model = model.merge_and_unload()  # the adapter folded into the weights: plain transformers"]
              if ex.method != "prefix" else []), "```", ""]


def render_card(data: dict[str, Any], ex: Exported, *, system: str, user: str,
                settings: dict[str, Any] | None = None) -> str:
    """README.md for the export: what it is, its base, data, settings, eval table, load, serve."""
    from ftui.core.export import _cell, _metrics_table

    library = {"adapter": "peft", "merged": "transformers", "gguf": "gguf"}.get(ex.kind, "peft")
    if ex.method == "full" and ex.kind != "gguf":
        library = "transformers"
    what = {"adapter": f"a {ex.method} adapter for", "merged": "a fine-tune of (adapter merged in)",
            "gguf": "a GGUF fine-tune of"}.get(ex.kind, f"a {ex.method} adapter for")
    if ex.method == "full" and ex.kind != "gguf":
        what = "a full fine-tune of"
    lines = ["---", f"base_model: {ex.base}", f"library_name: {library}",
             "tags: [ftui, " + ", ".join(filter(None, [ex.method, data.get("task") or ""])) + "]", "---", "",
             f"# {data['id']}", "",
             f"{what[0].upper()}{what[1:]} `{ex.base}`, trained and measured with ftui "
             f"{data.get('ftui_version') or ''} "
             f"(preset `{data.get('preset') or '-'}`, task `{data.get('task')}`).", ""]
    tr = data.get("training") or {}
    lines += ["| | |", "|---|---|", f"| base model | `{ex.base}` |", f"| method | {ex.method} |"]
    if tr.get("steps") is not None:
        lines.append(f"| steps | {tr['steps']} |")
    if tr.get("final_loss") is not None:
        lines.append(f"| final train loss | {_cell(tr['final_loss'])} |")
    if ex.kind == "gguf":
        lines.append(f"| files | {', '.join(ex.files)} |")
    source = data.get("data") or {}
    lines += ["", "## Data", ""]
    if source.get("source"):
        sha = f" (sha256 `{source['sha256'][:12]}`)" if source.get("sha256") else ""
        lines.append(f"Source: `{source['source']}`{sha}")
    sizes = source.get("split_sizes") or {}
    if sizes:
        lines.append("Split: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    hp = {k: v for k, v in (data.get("hyperparameters") if settings is None else settings or {}).items()
          if v not in (None, "")}
    if hp:
        lines += ["", "## Settings", "", "| setting | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in hp.items()]
    lines += ["", "## Evaluation (held-out test split, greedy decoding)", ""]
    lines += _metrics_table(data.get("eval") or {}) or ["Not evaluated yet."]
    lines += ["", "## Prompt format", "", "The model was trained on chat messages rendered with its chat template:", ""]
    if system:
        lines += ["System:", "", "```text", system, "```", ""]
    lines += ["User (`{field}` is filled from each row):", "", "```text", user, "```", ""]
    lines += load_lines(ex)
    lines += serve_lines(ex, data["id"])
    return "\n".join(lines).rstrip() + "\n"


def record_export(run: Run, kind: str, folder: Path, files: Sequence[Path]) -> None:
    """Remember in ``exports.json`` where ``kind`` was last exported (``Run.exports`` reads it)."""
    current = run.exports()
    current[kind] = {"path": str(folder), "files": [str(f) for f in files], "ts": time.time()}
    write_json_atomic(run.dir / EXPORTS_FILE, current)
