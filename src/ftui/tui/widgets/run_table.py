"""The table of runs that the Runs and Study screens show: rows keyed by run (or run and
variant), refreshed in place while their runs work."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from textual.binding import Binding
from textual.widgets import DataTable

Column = tuple[str, "str | None"]
"""(label, key); a None key lets the table make one."""


class RunTable(DataTable):
    """A row-cursor DataTable that its screen refills every few seconds with ``show``.

    The same rows are updated in place, so the cursor stays and nothing flickers; a cell that
    grows widens its column (``update_width``), which a plain ``update_cell`` does not. Other
    rows rebuild the table with the cursor kept on the same row key where it is still listed.
    """

    BINDINGS = [
        # a DataTable's own Home and End scroll sideways in row mode: here they go to the first
        # and the last run, as ctrl+home and ctrl+end do
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]

    def __init__(self, *, id: str | None = None, on_choose: Callable[[], None] | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.on_choose = on_choose
        """What enter (or a click) on a row does: the screen's ``open``."""

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.on_choose is not None:
            event.stop()
            self.on_choose()

    def show(self, columns: Sequence[Column], rows: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Show ``rows`` (row key, cells in column order) under ``columns``."""
        labels = [label for label, _ in columns]
        keys = [key for key, _ in rows]
        same_columns = [str(c.label) for c in self.ordered_columns] == labels
        if same_columns and [str(k.value) for k in self.rows] == keys:
            for key, cells in rows:
                for column, cell in zip(self.ordered_columns, cells):
                    self.update_cell(key, column.key, cell, update_width=True)
            return
        selected, row = self.selected_key(), self.cursor_row
        if same_columns:
            self.clear()
        else:
            self.clear(columns=True)
            for label, key in columns:
                self.add_column(label, key=key)
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if self.row_count:
            self.move_cursor(row=keys.index(selected) if selected in keys else min(row, self.row_count - 1))

    def selected_key(self) -> str | None:
        """The key of the row under the cursor, None in an empty table."""
        if not self.row_count or self.cursor_row >= self.row_count:
            return None
        return str(self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value)
