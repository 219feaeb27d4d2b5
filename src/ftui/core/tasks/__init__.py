"""Tasks: what "valid" and "correct" mean for a model output (see DESIGN.md, Tasks).

The registry: a task name -> its class, imported on first use (the SQL task loads sqlglot,
the JSON task jsonschema; ``ftui --help`` and the config loader load neither). Adding a task
is one module plus one ``register_task`` line here.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

from ftui.core.errors import ConfigError
from ftui.core.tasks.base import Score, Task, rate

__all__ = ["TASK_NAMES", "Score", "Task", "make_task", "register_task", "task_names", "rate"]

_REGISTRY: dict[str, Callable[[], Callable[..., Task]]] = {}
"""Task name -> a loader of the task class (called with a preset's ``[task_options]``)."""


def register_task(name: str, cls: str | Callable[..., Task]) -> None:
    """Register the task ``name``: its class, or ``"module:Class"`` to import on first use."""
    if isinstance(cls, str):
        module, _, attr = cls.partition(":")
        _REGISTRY[name] = lambda: getattr(importlib.import_module(module), attr)
    else:
        _REGISTRY[name] = lambda: cls


register_task("sql", "ftui.core.tasks.sql:SqlTask")
register_task("funcrep", "ftui.core.tasks.funcrep:FuncrepTask")
register_task("json", "ftui.core.tasks.jsontask:JsonTask")
register_task("text", "ftui.core.tasks.text:TextTask")

TASK_NAMES: tuple[str, ...] = tuple(_REGISTRY)
"""The built-in tasks; ``task_names()`` includes any registered later."""


def task_names() -> tuple[str, ...]:
    """Every registered task, in registration order."""
    return tuple(_REGISTRY)


def make_task(name: str, options: Mapping[str, Any] | None = None) -> Task:
    """Build the task called ``name`` with a preset's ``[task_options]`` (may be empty)."""
    loader = _REGISTRY.get(name)
    if loader is None:
        raise ConfigError(f"unknown task '{name}'; choose one of: {', '.join(task_names())}")
    try:
        return loader()(**dict(options or {}))
    except TypeError as exc:  # an unknown option name in a preset
        raise ConfigError(f"task '{name}': bad task_options: {exc}") from None
