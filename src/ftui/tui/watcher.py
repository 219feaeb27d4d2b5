"""Reading a run directory as it changes: new events, status, runner.log lines. No Textual.

A screen calls ``poll()`` from a worker thread a few times a second and posts what it
returns. The watcher survives what can happen to a run: the runner finishing, failing,
vanishing (status goes ``lost``), the events file being rewritten by a resume (it replays
from the start), and the whole directory being deleted (``missing``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from ftui.core.events import MISSING, EventTail
from ftui.core.runs import Run

LOG_TAIL_BYTES = 64 * 1024
"""How much of an existing runner.log a new viewer reads (its end)."""


@dataclass
class Poll:
    events: list[dict[str, Any]] = field(default_factory=list)
    reset: bool = False
    status: dict[str, Any] | None = None
    """Set when the status changed since the last poll."""
    missing: bool = False
    log_lines: list[str] = field(default_factory=list)


class RunWatcher:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.tail = EventTail(run.events_path)
        self._inode: int | None = None
        self._status_key: tuple | None = None
        self._log_offset: int | None = None
        self._log_partial = b""

    def poll(self) -> Poll:
        out = Poll()
        try:
            st = os.stat(self.run.events_path)
        except OSError:
            st = None
        if st is not None:
            if self._inode is not None and (st.st_ino != self._inode or st.st_size < self.tail.state.offset):
                self.tail = EventTail(self.run.events_path)  # rewritten (a resume): replay it
                out.reset = True
            self._inode = st.st_ino
        out.events = self.tail.read()
        out.missing = not self.run.dir.is_dir()
        status = {"state": MISSING, "message": "the run directory is gone"} if out.missing else self.run.status()
        key = (status.get("state"), status.get("message"), status.get("pid"), status.get("ended"))
        if key != self._status_key:
            self._status_key = key
            out.status = status
        out.log_lines = self._read_log()
        return out

    def _read_log(self) -> list[str]:
        path = self.run.dir / "runner.log"
        try:
            size = path.stat().st_size
        except OSError:
            return []
        if self._log_offset is None:
            self._log_offset = max(0, size - LOG_TAIL_BYTES)
        if size < self._log_offset:  # truncated
            self._log_offset, self._log_partial = 0, b""
        if size == self._log_offset:
            return []
        try:
            with open(path, "rb") as f:
                f.seek(self._log_offset)
                chunk = f.read(size - self._log_offset)
        except OSError:
            return []
        self._log_offset += len(chunk)
        *lines, self._log_partial = (self._log_partial + chunk).split(b"\n")
        # progress bars rewrite one line with \r: keep what the last rewrite left
        return [raw.decode("utf-8", "replace").rsplit("\r", 1)[-1] for raw in lines]


def follow(run: Run, post: Callable[[Any], Any], *, poll_s: float, cancelled: Callable[[], bool],
           runner_log: bool = False) -> None:
    """Poll ``run`` until ``cancelled()``, posting what changed as messages (a screen's worker
    thread runs this): new events, the status, and runner.log lines when ``runner_log``."""
    import time

    from ftui.tui.messages import RunEventsReceived, RunnerLogRead, RunStatusChanged

    watcher = RunWatcher(run)
    while not cancelled():
        p = watcher.poll()
        if p.events or p.reset:
            post(RunEventsReceived(p.events, reset=p.reset))
        if p.status is not None:
            post(RunStatusChanged(p.status, missing=p.missing))
        if runner_log and p.log_lines:
            post(RunnerLogRead(p.log_lines))
        time.sleep(poll_s)
