"""The table of runs that the Runs and Study screens show: rows keyed by run (or run and
variant), refreshed in place while their runs work."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

Column = tuple[str, "str | None"]
"""(label, key); a None key lets the table make one."""


def fitting(columns: Sequence[Column], rows: Sequence[tuple[str, Sequence[Any]]], room: int | None, *,
            optional: Sequence[str], padding: int = 1) -> list[bool]:
    """Which of ``columns`` show in ``room`` cells: every column whose key is not in ``optional``,
    then each optional one, most wanted first, that still fits; all of them when ``room`` is None
    (the table is not laid out yet). A column takes its widest cell or label and ``padding`` on
    each side, as DataTable draws it."""
    if room is None or not optional:
        return [True] * len(columns)
    widths = [max([cell_len(label), *(_width(cells[i]) for _, cells in rows)]) + 2 * padding
              for i, (label, _) in enumerate(columns)]
    keys = [key or label for label, key in columns]
    keep = [key not in optional for key in keys]
    used = sum(w for w, k in zip(widths, keep) if k)
    for i in (keys.index(name) for name in optional if name in keys):
        if used + widths[i] <= room:
            keep[i] = True
            used += widths[i]
    return keep


def _width(cell: Any) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))


class RunTable(DataTable):
    """A row-cursor DataTable that its screen refills every few seconds with ``show``.

    The same rows are updated in place, so the cursor stays and nothing flickers; a cell that
    grows widens its column (``update_width``), which a plain ``update_cell`` does not. Other
    rows rebuild the table with the cursor kept on the same row key where it is still listed.
    Columns the screen calls optional show only while they fit, so a narrow terminal leaves a
    column out instead of cutting it at the edge (the table is refitted when it is resized).
    """

    BINDINGS = [
        # a DataTable's own Home and End scroll sideways in row mode: here they go to the first
        # and the last run, as ctrl+home and ctrl+end do
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]

    class ColumnsRefitted(Message):
        """The optional columns left out changed (the table was filled or resized)."""

        def __init__(self, table: "RunTable") -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> "RunTable":
            """The table (lets ``@on(RunTable.ColumnsRefitted, "#id")`` pick one)."""
            return self.table

    def __init__(self, *, id: str | None = None, on_choose: Callable[[], None] | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.on_choose = on_choose
        """What enter (or a click) on a row does: the screen's ``open``."""
        self.left_out: list[str] = []
        """Labels of the optional columns that do not fit now."""
        self._shown: tuple[Sequence[Column], Sequence[tuple[str, Sequence[Any]]], Sequence[str]] | None = None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.on_choose is not None:
            event.stop()
            self.on_choose()

    def on_resize(self, event: events.Resize) -> None:
        if self._shown is not None:
            self.show(*self._shown[:2], optional=self._shown[2])

    def show(self, columns: Sequence[Column], rows: Sequence[tuple[str, Sequence[Any]]], *,
             optional: Sequence[str] = ()) -> None:
        """Show ``rows`` (row key, cells in column order) under ``columns``; the columns keyed in
        ``optional`` (most wanted first) only while they fit the table's width."""
        self._shown = (columns, rows, optional)
        keep = fitting(columns, rows, self._room(len(rows)), optional=optional, padding=self.cell_padding)
        left_out = [label for (label, _), k in zip(columns, keep) if not k]
        columns = [c for c, k in zip(columns, keep) if k]
        rows = [(key, [cell for cell, k in zip(cells, keep) if k]) for key, cells in rows]
        self._fill(columns, rows)
        if left_out != self.left_out:
            self.left_out = left_out
            self.post_message(self.ColumnsRefitted(self))

    def _room(self, rows: int) -> int | None:
        """Cells the columns may take: the width less the vertical scrollbar that ``rows`` rows
        and the header need; None before the table is laid out."""
        width, height = self.size
        if not width:
            return None
        return width - (self.styles.scrollbar_size_vertical if rows + 1 > height else 0)

    def _fill(self, columns: Sequence[Column], rows: Sequence[tuple[str, Sequence[Any]]]) -> None:
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
