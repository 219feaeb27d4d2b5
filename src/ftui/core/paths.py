"""Where ftui keeps things: ``$FTUI_HOME``, else the XDG data dir (``~/.local/share/ftui``)."""

from __future__ import annotations

import os
from pathlib import Path


def ftui_home() -> Path:
    """The root of runs and caches; not created here."""
    env = os.environ.get("FTUI_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "ftui"


def runs_dir() -> Path:
    return ftui_home() / "runs"


def models_dir() -> Path:
    return ftui_home() / "models"
