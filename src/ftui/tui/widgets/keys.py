"""The footer every screen shows: its keys, compact so that they fit in 80 columns."""

from __future__ import annotations

from textual.widgets import Footer


def key_footer() -> Footer:
    # The command palette (ctrl+p) still works; its footer entry would crowd out screen keys.
    return Footer(compact=True, show_command_palette=False)
