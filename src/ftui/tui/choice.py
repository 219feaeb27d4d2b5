"""The dataset a person picked, as the Dataset screen hands it to the Backend screen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ftui.core.backends import default_backend, settings_sections
from ftui.core.config import EvalSettings, Preset, PromptTemplate, SplitSpec
from ftui.core.data import load_source
from ftui.core.datacheck import DataReport, build_report
from ftui.core.examples import Example
from ftui.core.presets import load_preset
from ftui.core.prompts import DEFAULT_TEMPLATES
from ftui.core.request import RunRequest


@dataclass(frozen=True)
class DataPick:
    """What the file picker returns: a file or a folder of split files, read for a task or
    for a preset (its prompt, splits and settings), with optional ``--field`` mappings."""

    path: Path
    task: str = "text"
    preset: str | None = None
    fields: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"preset {self.preset}" if self.preset else self.task


@dataclass
class DatasetChoice:
    """A preset's data or a file, loaded and checked (token counts come separately)."""

    name: str
    task: str
    preset: Preset | None
    file: Path | None
    template: PromptTemplate
    split: SplitSpec
    backends: Mapping[str, Any]
    """Backend name -> the settings a run on this data starts from."""
    eval: EvalSettings
    examples: list[Example]
    report: DataReport
    fields: tuple[str, ...] = ()
    """``--field NAME=COLUMN`` items the data was read with."""

    @property
    def key(self) -> str:
        """Identifies the data for caches (token counts)."""
        if self.file is None:
            return f"preset:{self.name}"
        return f"file:{self.file}:{self.task}:{self.preset.name if self.preset else ''}:{','.join(self.fields)}"

    @property
    def source(self) -> str:
        if self.file is not None:
            return str(self.file)
        if self.preset and self.preset.data.sample:
            return f"{self.preset.data.sample} (offline sample, synthetic)"
        if self.preset:
            return f"hub:{self.preset.data.hub}"
        return ""

    def request(self, *, backend: str, overrides: Sequence[str] = ()) -> RunRequest:
        """What ``prepare_run`` needs to start a run on this data."""
        return RunRequest(preset=self.preset.name if self.preset else None, data=self.file,
                          task=None if self.preset else self.task, backend=backend,
                          overrides=tuple(overrides), fields=self.fields)


def load_choice(*, preset: str | None = None, file: Path | None = None, task: str = "text",
                fields: Sequence[str] = ()) -> DatasetChoice:
    """Read and check a preset's data, a file or a folder of split files (read for ``preset``
    when one is given); no tokenizer. Raises FtuiError for bad input."""
    p = load_preset(preset) if preset is not None else None
    task = p.task if p is not None else task
    loaded = load_source(task=task, preset=p, data=file, fields=fields)
    settings = {name: p.settings_for(name) if p is not None else cls() for name, cls in settings_sections().items()}
    if p is not None:
        template, split, evals = p.prompt, p.split, p.eval
    else:
        template, split, evals = DEFAULT_TEMPLATES[task], SplitSpec(), EvalSettings()
    # token lengths against the default backend's max length (the one a tokenizer counts for)
    max_length = getattr(settings[default_backend()], "max_length", 512)
    report = build_report(loaded, task=task, template=template, split=split, max_length=max_length,
                          tokenizer_name="counting…")
    name = p.name if p is not None and file is None else (file.name if file is not None else "")
    return DatasetChoice(name=name, task=task, preset=p, file=file, template=template, split=split,
                         backends=settings, eval=evals, examples=loaded.examples,
                         report=report, fields=tuple(fields))
