"""Presets are data: ``ftui/presets/*.toml``, loaded into ``config.Preset``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ftui.core.config import (
    DataSource,
    EvalSettings,
    Preset,
    PromptTemplate,
    SplitSpec,
    build,
)
from ftui.core.backends import settings_sections
from ftui.core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"

_TABLES = {
    "data": DataSource,
    "prompt": PromptTemplate,
    "split": SplitSpec,
    "eval": EvalSettings,
}
"""Tables of every preset; each registered backend's settings table (``[local]``...) besides."""
_SCALARS = ("name", "title", "description", "task")


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_preset(name: str) -> Preset:
    """The shipped preset called ``name``."""
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"no preset named '{name}'; shipped: {', '.join(preset_names())}")
    return load_preset_file(path)


def load_preset_file(path: Path) -> Preset:
    """A preset from any TOML file; errors name the file and the key."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read preset: {exc}") from None
    sections = settings_sections()
    unknown = sorted(set(raw) - set(_TABLES) - set(sections) - set(_SCALARS) - {"task_options"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
    try:
        tables = {key: build(cls, raw.get(key, {}), key) for key, cls in _TABLES.items() if key in raw}
        missing = [k for k in (*_SCALARS, "data", "prompt") if k not in raw]
        if missing:
            raise ConfigError(f"missing key(s) {', '.join(missing)}")
        backends = {name: build(cls, raw[name], name) for name, cls in sections.items() if name in raw}
        return Preset(
            **{k: raw[k] for k in _SCALARS},
            task_options=raw.get("task_options", {}),
            backends=backends,
            **tables,
        )
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def sample_path(preset: Preset) -> Path:
    """The preset's offline sample file."""
    return PRESETS_DIR / preset.data.sample


def all_presets() -> list[Preset]:
    """Every shipped preset, in name order."""
    return [load_preset(n) for n in preset_names()]
