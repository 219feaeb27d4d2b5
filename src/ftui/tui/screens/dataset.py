"""Dataset screen: a preset or a file; report, token statistics, split sizes; preview and full example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ftui.core.errors import FtuiError
from ftui.core.presets import load_preset, preset_names, sample_path
from ftui.core.prompts import conversation
from ftui.tui.widgets.flow_header import FlowHeader
from ftui.tui.widgets.keys import key_footer
from ftui.tui import fmt
from ftui.tui.choice import DataPick, DatasetChoice, load_choice
from ftui.tui.messages import TokensCounted
from ftui.tui.screens.modals import FilePickerModal
from ftui.tui.services import TokenCountError
from ftui.tui.widgets.render import render_conversation

PREVIEW_ROWS = 500
FILE_OPTION = "__file__"
WIDE = 130
"""Columns from which the report and the examples are shown side by side."""
TOKEN_DELAY_S = 0.4
"""Token counting (a subprocess) starts once the highlight has rested this long."""


def _rows_in(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


class DatasetScreen(Screen):
    """Step 1 of the flow."""

    BINDINGS = [
        Binding("n", "next", "Next: backend"),
        Binding("o", "open_file", "Open file"),
        Binding("1", "tab('report')", "Report", show=False),
        Binding("2", "tab('examples')", "Examples", show=False),
        Binding("t", "toggle_tab", "Report/Examples"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.presets, self.preset_errors = [], []
        for name in preset_names():
            try:
                self.presets.append(load_preset(name))
            except FtuiError as exc:  # one broken preset file must not take the others down
                self.preset_errors.append(str(exc))
        self.sizes = {p.name: min(_rows_in(sample_path(p)), p.data.limit or 10**9) if p.data.sample else None
                      for p in self.presets}
        self.choice: DatasetChoice | None = None
        self.load_error = ""
        self.file_choice: DataPick | None = None
        self._token_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield FlowHeader("dataset")
        with Horizontal(id="dataset-body"):
            with Vertical(id="sources"):
                yield Label("Data", classes="heading")
                yield OptionList(*self._options(), id="presets", compact=True)
            with Vertical(id="report-pane", classes="data-pane"):
                yield Label("Report  (t: examples)", classes="heading pane-title")
                with VerticalScroll(id="report-scroll"):
                    yield Static(id="report-text")
            with Vertical(id="examples-pane", classes="data-pane"):
                yield Label("Examples  (t: report)", classes="heading pane-title")
                yield DataTable(id="preview", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="example-scroll"):
                    yield Static(id="example-text")
        yield key_footer()

    def _options(self) -> list[Option]:
        opts = []
        for p in self.presets:
            size = f"{self.sizes[p.name]:,} rows" if self.sizes[p.name] is not None else "hub only"
            label = Text.assemble((p.name, "bold"), f"\n {p.task} · {size}")
            opts.append(Option(label, id=p.name))
        opts.append(Option(Text.assemble(("Open a file…", "bold"), "\n JSONL, CSV, Parquet"), id=FILE_OPTION))
        return opts

    def on_mount(self) -> None:
        options = self.query_one("#presets", OptionList)
        default = getattr(self.app, "default_preset", "demo")
        index = next((i for i, p in enumerate(self.presets) if p.name == default), 0)
        options.highlighted = index
        options.focus()
        for error in self.preset_errors:
            self.notify(error, severity="error", title="Preset skipped", timeout=10)

    # -- choosing ------------------------------------------------------------------------
    @on(OptionList.OptionHighlighted, "#presets")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id == FILE_OPTION:
            if self.file_choice is not None:
                self._load_pick(self.file_choice)
            return
        self._load(preset=event.option.id)

    @on(OptionList.OptionSelected, "#presets")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == FILE_OPTION:
            self.action_open_file()
        else:
            self.action_next()

    def action_open_file(self) -> None:
        pick = self.file_choice
        highlighted = self.query_one("#presets", OptionList).highlighted_option
        # A hub-only preset highlighted (spider offline): open its local copy, read for it.
        hub_only = next((p.name for p in self.presets if highlighted is not None and p.name == highlighted.id
                         and not p.data.sample), None)
        self.app.push_screen(FilePickerModal(
            pick.path.parent if pick else None, task=pick.task if pick else "text",
            preset=pick.preset if pick else hub_only, fields=pick.fields if pick else (),
            presets=[p.name for p in self.presets]), self._file_picked)

    def _file_picked(self, picked: DataPick | None) -> None:
        if picked is None:
            return
        self.file_choice = picked
        options = self.query_one("#presets", OptionList)
        options.replace_option_prompt(FILE_OPTION, Text.assemble(
            ("Your data", "bold"), f"\n {fmt.short(picked.path.name, 18)} ({picked.label})"))
        if options.highlighted != len(self.presets):
            options.highlighted = len(self.presets)  # the highlight handler loads it
        else:
            self._load_pick(picked)

    def on_resize(self, event) -> None:
        # Wide terminals show the report and the examples side by side; narrow ones, one at a time.
        wide = event.size.width >= WIDE
        if wide != self.has_class("-wide") or self.choice is not None:
            self.set_class(wide, "-wide")
            self._fill_preview()

    def action_tab(self, tab: str) -> None:
        """Show the report or the examples; the examples take the focus, so up/down walk them."""
        self.set_class(tab == "examples", "-examples")
        self.query_one("#preview" if tab == "examples" else "#presets").focus()

    def action_toggle_tab(self) -> None:
        self.action_tab("report" if self.has_class("-examples") else "examples")

    def action_next(self) -> None:
        choice = self.choice
        if choice is None:
            self.notify(self.load_error or "still loading the data…", severity="warning")
            return
        if not choice.report.ok:
            self.notify("this data has problems (see the report); fix them before training",
                        severity="error", title="Not ready")
            self.action_tab("report")
            return
        from ftui.tui.screens.backend import BackendScreen

        self.app.push_screen(BackendScreen(choice))

    # -- loading (worker threads) --------------------------------------------------------
    def _load_pick(self, pick: DataPick) -> None:
        self._load(preset=pick.preset, file=pick.path, task=pick.task, fields=pick.fields)

    def _load(self, *, preset: str | None = None, file: Path | None = None, task: str = "text",
              fields: tuple[str, ...] = ()) -> None:
        self.choice = None
        self.load_error = ""
        hub_only = next((p for p in self.presets if p.name == preset and not p.data.sample), None)
        hub_only = hub_only if file is None else None
        self.query_one("#report-text", Static).update(Group(
            Text(hub_only.title, style="bold"), Text(" ".join(hub_only.description.split()), style="italic"),
            Text(f"reading {hub_only.data.hub} from the hub (no offline sample)…", style="dim"))
            if hub_only else Text("loading…", style="dim"))
        self._load_worker(preset, file, task, fields)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_worker(self, preset: str | None, file: Path | None, task: str, fields: tuple[str, ...]) -> None:
        worker = get_current_worker()
        try:
            choice = load_choice(preset=preset, file=file, task=task, fields=fields)
        except (FtuiError, OSError, ValueError) as exc:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._show_error, str(exc))
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show_choice, choice)

    def _show_error(self, message: str) -> None:
        self.load_error = message
        highlighted = self.query_one("#presets", OptionList).highlighted_option
        hub_only = next((p for p in self.presets if highlighted is not None and p.name == highlighted.id
                         and not p.data.sample), None)
        hint = (Text(f"o: open a local copy (the folder of its split files), read as preset {hub_only.name}",
                     style="bold") if hub_only else Text(""))
        self.query_one("#report-text", Static).update(
            Group(Text("This data cannot be used", style="bold red"), Text(message), hint))
        self.query_one("#preview", DataTable).clear()
        self.query_one("#example-text", Static).update("")
        self.notify(message, severity="error", title="Data")

    def _show_choice(self, choice: DatasetChoice) -> None:
        self.choice = choice
        self._render_report()
        self._fill_preview()
        self._show_example(0)
        if self._token_timer is not None:
            self._token_timer.stop()
        cache = self.app.token_cache
        if choice.key not in cache:
            self._token_timer = self.set_timer(TOKEN_DELAY_S, lambda: self._count_tokens(choice))

    def _fill_preview(self) -> None:
        """The preview table, its columns as wide as the pane allows (redone on resize)."""
        choice = self.choice
        table = self.query_one("#preview", DataTable)
        table.clear(columns=True)
        room = max(30, (self.size.width - 24) // (2 if self.has_class("-wide") else 1) - 12)
        input_w, ref_w = room * 11 // 20, room - room * 11 // 20
        table.add_column("line", width=5)
        table.add_column("input", width=input_w)
        table.add_column("reference", width=ref_w)
        if choice is None:
            return
        for i, ex in enumerate(choice.examples[:PREVIEW_ROWS]):
            first = next(iter(ex.fields.values()), "") if ex.messages is None else ex.fields.get("input", "")
            if choice.task == "sql":
                first = ex.fields.get("question", first)
            table.add_row(str(ex.line), fmt.short(first, input_w), fmt.short(ex.reference, ref_w), key=str(i))

    @on(DataTable.RowHighlighted, "#preview")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_example(event.cursor_row)

    def _show_example(self, index: int) -> None:
        choice = self.choice
        view = self.query_one("#example-text", Static)
        if choice is None or not choice.examples or index >= len(choice.examples):
            view.update("")
            return
        ex = choice.examples[index]
        try:
            turns = conversation(ex, choice.template)
        except FtuiError as exc:
            view.update(Text(str(exc), style="red"))
            return
        head = Text(f"line {ex.line}: the conversation as training sees it", style="dim")
        view.update(Group(head, render_conversation(turns, choice.task, dark=self.app.current_theme.dark)))

    def _count_tokens(self, choice: DatasetChoice) -> None:
        if self.choice is choice:
            self._token_worker(choice)

    @work(thread=True, exclusive=True, group="tokens", exit_on_error=False)
    def _token_worker(self, choice: DatasetChoice) -> None:
        worker = get_current_worker()
        try:
            report = self.app.services.count_tokens(
                preset=choice.preset.name if choice.preset else None, file=choice.file,
                task=None if choice.preset else choice.task, fields=choice.fields,
                cancelled=lambda: worker.is_cancelled)
            result: Any = report
        except TokenCountError as exc:
            result = str(exc)
        except OSError as exc:
            result = f"could not run the token count: {exc}"
        if worker.is_cancelled:
            return
        self.app.call_from_thread(self._tokens_counted, choice, result)

    def _tokens_counted(self, choice: DatasetChoice, result: Any) -> None:
        if isinstance(result, dict):
            self.app.token_cache[choice.key] = result
        elif "cancelled" not in str(result):
            self.app.token_cache[choice.key] = str(result)
        if self.choice is choice:
            self._render_report()
        for screen in self.app.screen_stack:  # the Backend screen, when it opened before the count came
            if screen is not self:
                screen.post_message(TokensCounted(choice.key))

    # -- the report ----------------------------------------------------------------------
    def _render_report(self) -> None:
        choice = self.choice
        if choice is None:
            return
        tokens = self.app.token_cache.get(choice.key)
        self.query_one("#report-text", Static).update(report_renderable(choice, tokens))


def report_renderable(choice: DatasetChoice, tokens: Any) -> RenderableType:
    """Description, size, validation, token statistics and split sizes of the chosen data."""
    r = choice.report
    title = choice.preset.title if choice.preset else f"{choice.name} (task {choice.task})"
    head: list[RenderableType] = [Text(title, style="bold")]
    if choice.preset:
        head.append(Text(" ".join(choice.preset.description.split()), style="italic"))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    grid.add_row("source", f"{choice.source} · format {r.format}")
    rows = Text(f"{r.rows:,} read, {(r.limited_from or r.valid):,} usable, ")
    rows.append(f"{len(r.issues)} bad", style="bold red" if r.issues else "")
    if r.limited_from:
        rows.append(f"; the preset uses {r.valid:,}")
    grid.add_row("rows", rows)
    for issue in r.issues[:20]:
        grid.add_row("", Text(str(issue), style="red"))
    if len(r.issues) > 20:
        grid.add_row("", Text(f"… and {len(r.issues) - 20} more (ftui data check lists them all)", style="red"))
    dup = f"{len(r.duplicates)}"
    if r.duplicates:
        dup += f" (e.g. {r.duplicates[0]})"
        if r.conflicting:
            dup += f", {r.conflicting} with a different reference"
    grid.add_row("dupes", dup)
    if r.leaked:
        grid.add_row("leakage", Text(f"{len(r.leaked)} held-out row(s) also in the training split "
                                     f"(e.g. {r.leaked[0]})", style="yellow"))
    if isinstance(tokens, dict) and tokens.get("tokens"):
        s = tokens["tokens"]
        too_long = tokens.get("too_long", 0)
        grid.add_row("tokens", Text.assemble(
            f"min {s['min']}, mean {s['mean']}, p50 {s['p50']}, p95 {s['p95']}, max {s['max']}; "
            f"total {s['total']:,} ({tokens.get('tokenizer', '')}); ",
            (f"{too_long} longer than {tokens.get('max_length', r.max_length)}", "yellow" if too_long else "")))
    elif isinstance(tokens, dict):
        grid.add_row("tokens", tokens.get("tokenizer") or "not counted")
    elif isinstance(tokens, str):
        grid.add_row("tokens", Text(f"not counted: {tokens}", style="yellow"))
    else:
        grid.add_row("tokens", Text("counting with the model's tokenizer…", style="italic"))
    if r.split:
        grid.add_row("split", Text.assemble(", ".join(f"{k} {v:,}" for k, v in r.split.items()),
                                            (f"  (seed {choice.split.seed})", "dim")))
    else:
        grid.add_row("split", Text(r.split_error, style="red"))
    verdict = Text("ready: n goes on to the backend", style="bold green") if r.ok else \
        Text("NOT ready: fix the rows above", style="bold red")
    return Group(*head, grid, verdict)
