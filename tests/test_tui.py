"""The first screen: it starts, lists the presets, follows the cursor, and quits on q."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from ftui.tui.app import FtuiApp


async def test_first_screen_lists_presets_and_describes_the_highlighted_one():
    app = FtuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one("#presets", DataTable)
        assert table.row_count == 4
        assert [table.get_row_at(i)[0] for i in range(4)] == ["demo", "json-emotions", "sql", "viggo"]
        await pilot.press("down", "down")
        await pilot.pause()
        text = str(app.query_one("#description", Static).render())
        assert "sql-create-context" in text
        await pilot.press("q")
    assert app.return_code == 0
