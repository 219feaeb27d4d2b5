"""A checkbox that reads as ticked or not without colour."""

from __future__ import annotations

from textual.widgets import Checkbox


class TickBox(Checkbox):
    """Textual's Checkbox draws an X whether ticked or not and tells them apart by colour alone,
    which a terminal without colours, a screen capture or a colour-blind eye loses: a new user
    read the Study form's unticked openai as ticked (#18). This one draws the X only when ticked."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - Textual's name for the mark
        return "X" if self.value else " "
