"""Synthetic offline samples for the shipped presets (DESIGN.md, Presets).

One module per task (``sql``, ``viggo``, ``emotions``), each with
``generate(n, *, seed) -> list[dict]`` and its ``N`` and ``SEED``. The files are JSON Lines
under ``ftui/presets/data/``, byte-identical on every run: fixed seeds, no iteration over
sets, no ``hash()``. Regenerate with ``python -m ftui.presets.synth``; a test fails when a
shipped file differs from a fresh run.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

__all__ = ["DATASETS", "DATA_DIR", "Dataset", "build", "to_jsonl", "write"]

DATA_DIR = Path(__file__).parents[2] / "presets" / "data"
"""Where the shipped samples live (``src/ftui/presets/data``)."""


@dataclass(frozen=True)
class Dataset:
    """One generated sample file."""

    name: str
    """What ``--only`` calls it."""
    filename: str
    module: str
    """The generator module under ``ftui.presets.synth``."""


DATASETS: tuple[Dataset, ...] = (
    Dataset("sql", "sql.jsonl", "sql"),
    Dataset("viggo", "viggo.jsonl", "viggo"),
    Dataset("json_emotions", "json_emotions.jsonl", "emotions"),
)


def build(dataset: Dataset) -> list[dict[str, Any]]:
    """The rows of ``dataset``, from its module's ``N`` and ``SEED``."""
    module = importlib.import_module(f"{__name__}.{dataset.module}")
    return module.generate(module.N, seed=module.SEED)


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """One JSON object per line (UTF-8 text, not escaped), ending with a newline."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write(dataset: Dataset, out_dir: Path) -> Path:
    """Generate ``dataset`` into ``out_dir``; returns the file written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / dataset.filename
    # bytes, not text mode: no platform newline translation, so the file is the same everywhere
    path.write_bytes(to_jsonl(build(dataset)).encode("utf-8"))
    return path
