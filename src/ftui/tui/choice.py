"""The dataset a person picked, as the Dataset screen hands it to the Backend screen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ftui.core.config import EvalSettings, LocalSettings, OpenAISettings, Preset, PromptTemplate, SplitSpec
from ftui.core.data import load_file, load_preset_rows
from ftui.core.datacheck import DataReport, build_report
from ftui.core.examples import Example
from ftui.core.presets import load_preset, sample_path
from ftui.core.prompts import DEFAULT_TEMPLATES
from ftui.core.runspec import RunRequest


@dataclass
class DatasetChoice:
    """A preset's data or a file, loaded and checked (token counts come separately)."""

    name: str
    task: str
    preset: Preset | None
    file: Path | None
    template: PromptTemplate
    split: SplitSpec
    local: LocalSettings
    openai: OpenAISettings
    eval: EvalSettings
    examples: list[Example]
    report: DataReport

    @property
    def key(self) -> str:
        """Identifies the data for caches (token counts)."""
        return f"preset:{self.name}" if self.preset else f"file:{self.file}:{self.task}"

    @property
    def source(self) -> str:
        if self.preset and self.preset.data.sample:
            return f"{self.preset.data.sample} (offline sample, synthetic)"
        if self.preset:
            return f"hub:{self.preset.data.hub}"
        return str(self.file)

    def request(self, *, backend: str, overrides: Sequence[str] = ()) -> RunRequest:
        """What ``prepare_run`` needs to start a run on this data."""
        if self.preset:
            return RunRequest(preset=self.preset.name, backend=backend, overrides=tuple(overrides))
        return RunRequest(data=self.file, task=self.task, backend=backend, overrides=tuple(overrides))


def load_choice(*, preset: str | None = None, file: Path | None = None, task: str = "text") -> DatasetChoice:
    """Read and check a preset's sample or a file (no tokenizer). Raises FtuiError for bad input."""
    if preset is not None:
        p = load_preset(preset)
        loaded = load_preset_rows(p)
        report = build_report(loaded, task=p.task, template=p.prompt, split=p.split,
                              max_length=p.local.max_length, tokenizer_name="counting…")
        if p.data.sample:
            report.source = str(sample_path(p))
        return DatasetChoice(name=p.name, task=p.task, preset=p, file=None, template=p.prompt, split=p.split,
                             local=p.local, openai=p.openai, eval=p.eval, examples=loaded.examples,
                             report=report)
    assert file is not None
    loaded = load_file(file, task)
    split, local = SplitSpec(), LocalSettings()
    template = DEFAULT_TEMPLATES[task]
    report = build_report(loaded, task=task, template=template, split=split, max_length=local.max_length,
                          tokenizer_name="counting…")
    return DatasetChoice(name=file.name, task=task, preset=None, file=file, template=template, split=split,
                         local=local, openai=OpenAISettings(), eval=EvalSettings(), examples=loaded.examples,
                         report=report)
