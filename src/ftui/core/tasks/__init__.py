"""Tasks: what "valid" and "correct" mean for a model output (see DESIGN.md, Tasks)."""

from __future__ import annotations

from typing import Any, Mapping

from ftui.core.errors import ConfigError
from ftui.core.tasks.base import Score, Task, rate

TASK_NAMES: tuple[str, ...] = ("sql", "funcrep", "json", "text")

__all__ = ["TASK_NAMES", "Score", "Task", "make_task", "rate"]


def make_task(name: str, options: Mapping[str, Any] | None = None) -> Task:
    """Build the task called ``name`` with a preset's ``[task_options]`` (may be empty)."""
    opts = dict(options or {})
    try:
        if name == "sql":
            from ftui.core.tasks.sql import SqlTask

            return SqlTask(**opts)
        if name == "funcrep":
            from ftui.core.tasks.funcrep import FuncrepTask

            return FuncrepTask(**opts)
        if name == "json":
            from ftui.core.tasks.jsontask import JsonTask

            return JsonTask(**opts)
        if name == "text":
            from ftui.core.tasks.text import TextTask

            return TextTask(**opts)
    except TypeError as exc:  # an unknown option name in a preset
        raise ConfigError(f"task '{name}': bad task_options: {exc}") from None
    raise ConfigError(f"unknown task '{name}'; choose one of: {', '.join(TASK_NAMES)}")
