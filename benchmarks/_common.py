"""What the benchmark scripts share: ftui's import path, a scratch FTUI_HOME, a table, the JSON line."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]


def use_source_tree() -> None:
    """Import ftui from this checkout, installed or not."""
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)


@contextlib.contextmanager
def scratch_home(keep: bool = False) -> Iterator[Path]:
    """A throwaway ``$FTUI_HOME`` for the benchmark's runs, sharing the real model cache.

    Runs made here never show up in ``ftui runs``; the embedded model is converted once into
    the usual ``$FTUI_HOME/models`` (or ``~/.local/share/ftui/models``) and reused.
    """
    use_source_tree()
    from ftui.core.paths import models_dir

    models = models_dir()
    models.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="ftui-bench-"))
    (home / "models").symlink_to(models.resolve(), target_is_directory=True)
    before = os.environ.get("FTUI_HOME")
    os.environ["FTUI_HOME"] = str(home)
    try:
        yield home
    finally:
        if before is None:
            os.environ.pop("FTUI_HOME", None)
        else:
            os.environ["FTUI_HOME"] = before
        if not keep:
            (home / "models").unlink()
            shutil.rmtree(home, ignore_errors=True)


def machine() -> dict[str, Any]:
    """Where the figures come from, for the JSON line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "python": platform.python_version()}


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def emit(figures: dict[str, Any]) -> None:
    """The last line of every benchmark's output: its figures as one JSON object."""
    sys.stdout.flush()
    print(json.dumps(figures, separators=(", ", ": ")), flush=True)


def rounded(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(float(x), digits)
