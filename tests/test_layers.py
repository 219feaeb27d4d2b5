"""The import rules of DESIGN.md, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "ftui.core.config", "ftui.core.presets", "ftui.core.data", "ftui.core.datacheck",
    "ftui.core.prompts", "ftui.core.events", "ftui.core.runs", "ftui.core.scoring",
    "ftui.core.export", "ftui.core.machine", "ftui.core.backends", "ftui.core.openai_prep", "ftui.core.study",
    "ftui.core.evalplan", "ftui.core.progress", "ftui.core.runspec", "ftui.core.request",
    "ftui.core.checkpoints", "ftui.core.trackers", "ftui.core.tasks", "ftui.core.tasks.sql", "ftui.core.tasks.funcrep",
    "ftui.core.tasks.jsontask", "ftui.core.tasks.text",
]


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_core_does_not_load_textual_or_ml_libraries():
    mods = loaded_after("\n".join(f"import {m}" for m in CORE_MODULES))
    for heavy in ("textual", "torch", "transformers", "openai", "datasets"):
        assert heavy not in mods, f"importing the core loaded {heavy}"


def test_tui_does_not_load_torch_or_openai():
    mods = loaded_after("import ftui.tui.app")
    assert "textual" in mods
    for heavy in ("torch", "transformers", "peft", "openai", "tensorboardX", "mlflow", "wandb"):
        assert heavy not in mods, f"importing the TUI loaded {heavy}"


def test_help_does_not_load_torch():
    mods = loaded_after(
        "import sys\nfrom ftui.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert "ftui.cli" in mods
    for heavy in ("torch", "transformers", "textual", "openai"):
        assert heavy not in mods, f"`ftui --help` loaded {heavy}"


def test_backends_and_runner_load_ml_libraries_only_when_they_work():
    """The registry, the Backend protocol, the shared eval loop and each backend's package are
    cheap to import: torch and the openai SDK load inside the functions that train or answer."""
    mods = loaded_after("import ftui.backends.base, ftui.backends.evaluate, ftui.backends.local, "
                        "ftui.backends.openai, ftui.runner.runner, ftui.runner.launch")
    for heavy in ("torch", "transformers", "peft", "openai", "textual", "tensorboardX", "mlflow", "wandb"):
        assert heavy not in mods, f"importing the backends' packages loaded {heavy}"


def test_task_registry_and_config_load_no_task_module():
    """The task list is read without importing a task (the SQL task loads sqlglot)."""
    mods = loaded_after("import ftui.core.config\nimport ftui.core.tasks")
    assert "sqlglot" not in mods and "jsonschema" not in mods and "ftui.core.tasks.sql" not in mods


def test_local_hardware_facts_need_no_torch_until_asked():
    """backends/local/hardware takes its torch-free facts from core.machine; torch loads in detect()."""
    mods = loaded_after("import ftui.backends.local.hardware")
    assert "ftui.core.machine" in mods and "torch" not in mods


LAYERS = {  # package -> the packages its modules may import (DESIGN.md, Layers)
    "core": {"core"},
    "backends": {"core", "backends"},
    "runner": {"core", "backends", "runner"},
    "tui": {"core", "runner", "tui"},
    "cli": {"core", "backends", "runner", "tui", "cli"},
    "presets": {"core", "presets"},  # presets.synth, the sample generator: a tool beside its data
}


def test_every_module_imports_only_from_the_layers_below_it():
    """Read from the source (every import, also inside functions): one way down, as drawn."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "src" / "ftui"
    wrong = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if len(parts) == 1:
            continue  # ftui/__init__.py, ftui/__main__.py (the entry point: the CLI)
        layer = parts[0]
        assert layer in LAYERS, f"{path}: a package the layer rules do not know; add it to LAYERS"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                bits = name.split(".")
                if bits[0] == "ftui" and len(bits) > 1 and bits[1] in LAYERS and bits[1] not in LAYERS[layer]:
                    wrong.append(f"{path.relative_to(root)} imports {name}")
    assert not wrong, "imports that run up the layers:\n" + "\n".join(wrong)
