"""Messages posted from worker threads to screens (named for what happened)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class RunEventsReceived(Message):
    """New complete events of the watched run, one batch per read."""

    def __init__(self, events: list[dict[str, Any]], *, reset: bool = False) -> None:
        super().__init__()
        self.events = events
        self.reset = reset
        """The file was rewritten (a resume): forget what was shown, ``events`` replay it."""


class RunStatusChanged(Message):
    """``status.json`` says something new (or the run directory went missing)."""

    def __init__(self, status: dict[str, Any], *, missing: bool = False) -> None:
        super().__init__()
        self.status = status
        self.missing = missing


class RunnerLogRead(Message):
    """New lines of the runner's own ``runner.log`` (its stdout and stderr)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines


class TokensCounted(Message):
    """The token statistics of the data with ``key`` (``DatasetChoice.key``) are in the app's
    token cache now; a Backend screen opened before they came plans with them."""

    bubble = False

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class InferenceEventReceived(Message):
    """The Playground's inference process wrote an event (``ftui.runner.serve_client``)."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__()
        self.event = event
