"""The header of the flow's four screens: ``1 dataset › 2 backend › 3 training › 4 evaluation``,
the screen's own step highlighted, so a user sees where they are and what comes next."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Header

FLOW_STEPS = ("dataset", "backend", "training", "evaluation")


def breadcrumb(current: str) -> Content:
    """The four steps, ``current`` in reverse video and the others dim."""
    parts: list[tuple[str, str]] = []
    for number, step in enumerate(FLOW_STEPS, 1):
        if parts:
            parts.append((" › ", "dim"))
        # the spaces around the current step make its highlight a block, not a bare word
        parts.append((f" {number} {step} ", "bold reverse") if step == current else (f"{number} {step}", "dim"))
    return Content.assemble(*parts)


class FlowHeader(Header):
    """Textual's header with the breadcrumb in place of a sub-title (at 80 columns the title
    area is 62 wide: ``ftui — `` and the four steps take 58)."""

    def __init__(self, step: str) -> None:
        if step not in FLOW_STEPS:
            raise ValueError(f"step {step!r} is not one of {', '.join(FLOW_STEPS)}")
        super().__init__()
        self.step = step

    def format_title(self) -> Content:
        return Content.assemble(Content(self.screen_title), (" — ", "dim"), breadcrumb(self.step))
