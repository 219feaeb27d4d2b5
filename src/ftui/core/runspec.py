"""The typed run spec: what ``run.json`` freezes, written from these types and read back into
them once (``Run.spec``). Nothing downstream indexes the spec by string key.

The on-disk format is the documented contract (README, Runs): the same keys in the same order
as ever, ``hyperparameters`` being the run's backend's settings (``core.backends``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Mapping

from ftui.core.config import EvalSettings, PromptTemplate, ReportSettings, SplitSpec, to_plain
from ftui.core.errors import ConfigError


@dataclass(frozen=True)
class DataInfo:
    """Where the run's examples came from."""

    source: str = ""
    """A file, a folder of split files, ``hub:ID``, or a preset's sample file."""
    sha256: str | None = None
    """Of the source file (None for a folder or the hub)."""
    format: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    """Task field -> the source column it was read from."""
    rows: int = 0
    """Rows read (good and bad)."""
    used: int = 0
    """Examples used (after a preset's limit)."""


@dataclass(frozen=True)
class RunSpec:
    """One run, as ``run.json`` holds it."""

    task: str = "text"
    backend: str = ""
    model: str = ""
    hyperparameters: Any = None
    """The backend's settings dataclass (a plain mapping when the backend is not registered
    in this process, e.g. a plugin that is not loaded)."""
    prompt: PromptTemplate = field(default_factory=lambda: PromptTemplate(system="", user="{input}"))
    split: SplitSpec = field(default_factory=SplitSpec)
    eval: EvalSettings = field(default_factory=EvalSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    """The experiment trackers the runner reports to (``report_to``), whatever the backend."""
    data: DataInfo = field(default_factory=DataInfo)
    preset: str | None = None
    task_options: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""
    ftui_version: str = ""
    created: float | None = None
    """Unix seconds."""
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    unrecorded_settings: tuple[str, ...] = ()
    """The backend's settings that ``run.json`` does not hold: a run made before they existed.
    ``hyperparameters`` has today's defaults for them, which that run never had, so what lists
    a run's settings (``recorded_settings``: ``ftui show``, the summary, Compare) leaves them
    out. Read, never written: ``to_json`` writes every setting."""

    def to_json(self) -> dict[str, Any]:
        """``run.json``'s object, its keys in the documented order."""
        head = {"id": self.id, "ftui_version": self.ftui_version, "created": self.created} if self.id else {}
        body = {
            "preset": self.preset, "task": self.task, "task_options": to_plain(self.task_options),
            "prompt": to_plain(self.prompt), "data": to_plain(self.data), "split": to_plain(self.split),
            "backend": self.backend, "model": self.model, "hyperparameters": to_plain(self.hyperparameters),
            "eval": to_plain(self.eval), "report": to_plain(self.report),
        }
        tail = {"split_sizes": dict(self.split_sizes)} if self.id else {}
        return {**head, **body, **tail}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "RunSpec":
        """Read ``run.json``'s object; missing keys take their defaults (runs of earlier versions)."""
        from ftui.core.backends import backend  # the registry imports config, as this module does

        name = str(obj.get("backend") or "")
        raw_hp = obj.get("hyperparameters") or {}
        try:
            settings = backend(name).settings
        except ConfigError:
            hyperparameters: Any = dict(raw_hp)
        else:
            hyperparameters = _typed(settings, raw_hp, fallback=dict(raw_hp))
        unrecorded = tuple(f.name for f in dataclasses.fields(hyperparameters) if f.name not in raw_hp) \
            if dataclasses.is_dataclass(hyperparameters) and isinstance(raw_hp, Mapping) else ()
        return cls(
            task=str(obj.get("task") or "text"), backend=name, model=str(obj.get("model") or ""),
            hyperparameters=hyperparameters,
            prompt=_typed(PromptTemplate, obj.get("prompt") or {}, fallback=cls().prompt),
            split=_typed(SplitSpec, obj.get("split") or {}, fallback=SplitSpec()),
            eval=_typed(EvalSettings, obj.get("eval") or {}, fallback=EvalSettings()),
            report=_typed(ReportSettings, obj.get("report") or {}, fallback=ReportSettings()),
            data=_typed(DataInfo, obj.get("data") or {}, fallback=DataInfo()),
            preset=obj.get("preset"), task_options=dict(obj.get("task_options") or {}),
            id=str(obj.get("id") or ""), ftui_version=str(obj.get("ftui_version") or ""),
            created=obj.get("created"), split_sizes=dict(obj.get("split_sizes") or {}),
            unrecorded_settings=unrecorded,
        )

    @property
    def data_name(self) -> str:
        """The run's data in a few words: the preset's name, else the file's or folder's name
        (``hub:ID`` as it is), else the task's."""
        source = self.data.source
        if self.preset or not source:
            return self.preset or self.task
        return source if source.startswith("hub:") else PurePath(source).name or source

    def recorded_settings(self) -> dict[str, Any]:
        """The backend's settings as ``run.json`` holds them, as plain values (lists for tuples):
        an older run's lacks those made after it (``unrecorded_settings``)."""
        return {k: v for k, v in (to_plain(self.hyperparameters) or {}).items() if k not in self.unrecorded_settings}

    def used_settings(self) -> dict[str, Any]:
        """The recorded settings this run reads (``recorded_settings``), without ``model`` (said
        on its own) and the ones its method leaves unread."""
        unused = {"model", *self.unused_settings()}
        return {k: v for k, v in self.recorded_settings().items() if k not in unused}

    def unused_settings(self) -> tuple[str, ...]:
        """The backend's settings this run's method does not read (none for most backends)."""
        return tuple(getattr(self.hyperparameters, "unused", tuple)())

    def setting(self, name: str, default: Any = None) -> Any:
        """One of the backend's settings, or ``default`` when this backend has no such setting."""
        hp = self.hyperparameters
        if isinstance(hp, Mapping):
            return hp.get(name, default)
        return getattr(hp, name, default)


def _typed(cls: type, values: Any, *, fallback: Any) -> Any:
    """``cls`` from a JSON object: unknown keys dropped, lists back to the tuples they were;
    ``fallback`` when the values no longer pass the class's checks."""
    if not isinstance(values, Mapping):
        return fallback
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ConfigError):
        return fallback
