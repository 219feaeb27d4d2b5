"""Export as a modal: pick the format and where, then the core's ``export`` writes it.

A model export (adapter, merged, GGUF) loads torch, which the TUI process never imports: it
runs ``ftui export RUN --model KIND --out DIR`` as a child process, shows its output as it
comes, and ends it when the modal closes first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from ftui.core.errors import FtuiError
from ftui.core.export import FILENAMES
from ftui.core.runs import Run
from ftui.runner.launch import child_env  # stdlib and core only; no ML imports
from ftui.tui.widgets.keys import key_footer

FORMAT_CHOICES = [
    ("all four files", "all"),
    ("Markdown summary", "md"),
    ("JSON summary", "json"),
    ("predictions (CSV)", "csv"),
    ("model: adapter + card", "adapter"),
    ("model: merged", "merged"),
    ("model: GGUF f16", "gguf-f16"),
    ("model: GGUF q8_0", "gguf-q8_0"),
]
FORMAT_FILES = {"all": "summary.md, summary.json, predictions.csv and loss.png into a folder",
                "md": "summary.md and loss.png", "json": "summary.json",
                "csv": "predictions.csv, every variant's answers",
                "adapter": "the adapter, its card (README.md) and an Ollama Modelfile",
                "merged": "the adapter merged into its base: a transformers folder, card, Modelfile",
                "gguf-f16": "the merged model as one GGUF file (f16), card, Modelfile",
                "gguf-q8_0": "the merged model as one GGUF file (q8_0), card, Modelfile"}
MODEL_KINDS = {"adapter": ("adapter",), "merged": ("merged",), "gguf-f16": ("gguf", "f16"),
               "gguf-q8_0": ("gguf", "q8_0")}
"""A model choice -> (``--model`` kind, ``--gguf-type``)."""
"""What each choice writes, said under the choice (the select itself stays narrow enough for
80 columns)."""


class ExportModal(ModalScreen["list[Path] | None"]):
    """Collects a format and a path; dismisses with the written files (None: cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Close"), Binding("ctrl+s", "export", "Export")]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.written: list[Path] | None = None
        self.child: subprocess.Popen[str] | None = None

    def default_path(self, fmt: str) -> Path:
        if fmt in MODEL_KINDS:
            return self.run.dir / "export" / MODEL_KINDS[fmt][0]
        return self.run.dir if fmt == "all" else self.run.dir / FILENAMES[fmt]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="export-dialog"):
            yield Label(f"Export run {self.run.id}", classes="dialog-title")
            with Horizontal(classes="row"):
                yield Label("format", classes="label")
                yield Select(FORMAT_CHOICES, value="all", allow_blank=False, id="export-format", compact=True)
            with Horizontal(classes="row"):
                yield Label("to", classes="label")
                yield Input(str(self.default_path("all")), id="export-path", compact=True)
            yield Static(self._hint("all"), classes="hint", id="export-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="export-go", compact=True)
                yield Button("Close", id="export-close", compact=True)
            yield Static("", id="export-result")
        yield key_footer()

    def on_mount(self) -> None:
        self.query_one("#export-format", Select).focus()

    @staticmethod
    def _hint(fmt: str) -> str:
        return f"writes {FORMAT_FILES[fmt]}; enter or ctrl+s writes"

    @on(Select.Changed, "#export-format")
    def _format_changed(self, event: Select.Changed) -> None:
        self.query_one("#export-hint", Static).update(self._hint(str(event.value)))
        path = self.query_one("#export-path", Input)
        defaults = {str(self.default_path(f)) for _, f in FORMAT_CHOICES}
        if path.value in defaults or not path.value.strip():
            path.value = str(self.default_path(str(event.value)))

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-go")
    def action_export(self) -> None:
        fmt = str(self.query_one("#export-format", Select).value)
        raw = self.query_one("#export-path", Input).value.strip()
        out = Path(raw).expanduser() if raw else self.default_path(fmt)
        if self.child is not None and self.child.poll() is None:
            self.app.notify("an export is still being written", severity="warning")
            return
        self.query_one("#export-result", Static).set_class(False, "error")
        self.query_one("#export-result", Static).update("writing…")
        if fmt in MODEL_KINDS:
            self._export_model(fmt, out)
        else:
            self._export(None if fmt == "all" else fmt, out)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export_model(self, choice: str, out: Path) -> None:
        kind, *types = MODEL_KINDS[choice]
        cmd = [sys.executable, "-m", "ftui", "export", self.run.id, "--model", kind, "--out", str(out)]
        for t in types:
            cmd += ["--gguf-type", t]
        try:
            self.child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, env=child_env())
        except OSError as exc:
            self.app.call_from_thread(self._show_error, f"could not start the export: {exc}")
            return
        out_text, err_text = self.child.communicate()
        if self.child.returncode != 0:
            lines = [line for line in err_text.splitlines() if line.strip()]
            why = next((line.split("ftui: error: ", 1)[1] for line in lines if "ftui: error: " in line),
                       lines[-1] if lines else f"exit code {self.child.returncode}")
            self.app.call_from_thread(self._show_error, f"could not export: {why}")
            return
        written = [Path(line) for line in out_text.splitlines() if line.strip()]
        summary = next((line for line in reversed(err_text.splitlines()) if line.startswith("wrote ")), "")
        self.app.call_from_thread(self._show_written, written, summary)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export(self, fmt: str | None, out: Path) -> None:
        from ftui.core.export import export  # plots with matplotlib: only when asked

        try:
            written = export(self.run, fmt=fmt, out=out)
        except (OSError, FtuiError, ValueError) as exc:
            self.app.call_from_thread(self._show_error, f"could not export: {exc}")
            return
        self.app.call_from_thread(self._show_written, written)

    def _show_error(self, text: str) -> None:
        self.query_one("#export-result", Static).update(text)
        self.query_one("#export-result", Static).set_class(True, "error")

    def _show_written(self, written: list[Path], summary: str = "") -> None:
        self.written = written
        result = self.query_one("#export-result", Static)
        result.set_class(False, "error")
        if summary:  # a model: its folder, size and time, then the files by name
            result.update(summary + "\n" + "  ".join(p.name for p in written))
        else:
            result.update("wrote:\n" + "\n".join(f"  {p}" for p in written))
        self.app.notify(f"exported {len(written)} file(s) to {written[0].parent}" if written else "nothing written",
                        title="Export")
        self.query_one("#export-close", Button).focus()

    @on(Button.Pressed, "#export-close")
    def action_cancel(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()  # closing stops a model export half-way; nothing else reads it
        self.dismiss(self.written)
