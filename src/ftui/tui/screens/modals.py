"""Small modal dialogs: confirm, ask for a line of text, pick a data file."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, Select, Static

from ftui.core.tasks import task_names
from ftui.tui.choice import DataPick
from ftui.tui.widgets.keys import key_footer


class ConfirmModal(ModalScreen[bool]):
    """A yes/no question; ``y``/enter confirms, ``n``/escape declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes", compact=True)
                yield Button(f"{self.no} (n)", id="no", compact=True)
        yield key_footer()

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PromptModal(ModalScreen["str | None"]):
    """One line of text (search, go to number); enter submits, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, *, value: str = "", placeholder: str = "", hint: str = "") -> None:
        super().__init__()
        self.title_text, self.value, self.placeholder, self.hint = title, value, placeholder, hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            if self.hint:
                yield Static(self.hint, classes="hint")
        yield key_footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class FilePickerModal(ModalScreen["DataPick | None"]):
    """A data file or a folder of split files, what to read it as (a task, or a preset with
    its prompt and published splits), and optional column mappings."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+o", "open", "Open")]

    def __init__(self, start: Path | None = None, *, task: str = "text", preset: str | None = None,
                 fields: Sequence[str] = (), presets: Sequence[str] = ()) -> None:
        super().__init__()
        self.start = start or Path.cwd()
        self.initial = f"preset:{preset}" if preset else f"task:{task}"
        self.initial_fields = " ".join(fields)
        self.presets = tuple(presets)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Open a data file (JSONL, JSON list, CSV, Parquet) or a folder of split files "
                        "(train, validation/valid/dev, test)", classes="dialog-title")
            yield DirectoryTree(self.start, id="tree")
            with Horizontal(classes="row"):
                yield Label("path", classes="label")
                yield Input(placeholder="type a path or pick one above", id="path", compact=True)
            with Horizontal(classes="row"):
                yield Label("read as", classes="label")
                options = [(f"task {t}", f"task:{t}") for t in task_names()]
                options += [(f"preset {p}", f"preset:{p}") for p in self.presets]
                yield Select(options, value=self.initial, allow_blank=False, id="task", compact=True)
                yield Button("Open", variant="primary", id="open", compact=True)
            with Horizontal(classes="row"):
                yield Label("fields", classes="label")
                yield Input(value=self.initial_fields, id="fields", compact=True,
                            placeholder="optional: NAME=COLUMN ..., e.g. meaning_representation=mr target=ref")
            yield Static("", id="picker-error", classes="error")
        yield key_footer()

    def on_mount(self) -> None:
        self.query_one("#tree", DirectoryTree).focus()

    @on(DirectoryTree.FileSelected)
    @on(DirectoryTree.DirectorySelected)
    def _path_selected(self, event: DirectoryTree.FileSelected | DirectoryTree.DirectorySelected) -> None:
        self.query_one("#path", Input).value = str(event.path)

    @on(Input.Submitted, "#path")
    @on(Input.Submitted, "#fields")
    @on(Button.Pressed, "#open")
    def action_open(self) -> None:
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            self.query_one("#picker-error", Static).update("pick a file or folder in the tree, or type its path")
            return
        kind, _, name = str(self.query_one("#task", Select).value).partition(":")
        fields = tuple(self.query_one("#fields", Input).value.split())
        path = Path(raw).expanduser()
        self.dismiss(DataPick(path, preset=name, fields=fields) if kind == "preset"
                     else DataPick(path, task=name, fields=fields))

    def action_cancel(self) -> None:
        self.dismiss(None)
