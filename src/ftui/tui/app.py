"""The Textual app. For now a first screen that lists the presets; the guided flow comes next."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from ftui.core.presets import all_presets


class FtuiApp(App):
    """ftui's terminal interface."""

    CSS_PATH = "ftui.tcss"
    TITLE = "ftui"
    SUB_TITLE = "dataset -> backend -> training -> evaluation -> summary"
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Presets", classes="heading")
        yield DataTable(id="presets", cursor_type="row")
        yield Static(id="description")
        yield Static(
            "The guided flow and the live training view come next. Meanwhile, from a shell: "
            "`ftui train --preset demo` trains and evaluates, `ftui runs` lists runs, "
            "`ftui export latest` writes the summary.",
            classes="note",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.presets = all_presets()
        table = self.query_one("#presets", DataTable)
        table.add_columns("name", "task", "title")
        for p in self.presets:
            table.add_row(p.name, p.task, p.title, key=p.name)
        table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        preset = self.presets[event.cursor_row]
        self.query_one("#description", Static).update(" ".join(preset.description.split()))


def run_app() -> int:
    FtuiApp().run()
    return 0
