"""The machine-wide queue of local runs: one run at a time on each device, first come first served.

Everything lives in ``$FTUI_HOME/queue/<host>/`` and is held with ``fcntl.flock``, so a process
that dies lets go of what it held without anyone cleaning up:

- ``<device>.lock`` (``cpu.lock``, ``gpu0.lock``): held by the runner working on that device,
  from before it loads a model until after it records its last state; the file names that run.
- ``tickets/<seq>-<run>.json``: one per run waiting, in the order they were launched. The
  launcher takes it (so the order is the order of ``ftui train``/``eval``/``resume`` calls, not
  of the runners' start-up) and hands the locked file to the runner, which removes it once it
  holds its devices. A ticket nobody holds any more (its runner died) is skipped and removed.
- ``line.lock``: held for the moment it takes to take a ticket or look at the line.

A run waits while a ticket before its own wants one of its devices, or another run holds
one. Runs on disjoint devices never wait for each other.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ftui.core.paths import ftui_home

POLL_S = 0.5
TICKET_ENV = "FTUI_QUEUE_TICKET"
"""The path of the ticket the launcher took for the runner it starts."""


def queue_dir() -> Path:
    """This machine's queue (a ``$FTUI_HOME`` shared by several machines holds one each)."""
    return ftui_home() / "queue" / socket.gethostname()


@dataclass(frozen=True)
class Place:
    """Where a waiting run stands."""

    place: int
    """1: next to start."""
    ahead: str | None
    """The run just before it in line; None when it is first."""
    holder: str | None
    """The run using (one of) its devices now, where known."""

    @property
    def behind(self) -> str | None:
        """The run it waits for: the one just ahead, else the one using its devices."""
        return self.ahead or self.holder


@dataclass
class Ticket:
    path: Path
    run_id: str
    keys: tuple[str, ...]
    fd: int | None = None
    """Open and locked while its owner lives (None in a process that did not take it)."""

    @property
    def seq(self) -> int:
        return int(self.path.name.split("-", 1)[0])


class Held:
    """The lock files of the devices a runner works on, until ``release()`` (or its exit)."""

    def __init__(self, fds: Sequence[int]) -> None:
        self._fds = list(fds)

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


@contextlib.contextmanager
def _line(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "line.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def take_ticket(run_id: str, keys: Sequence[str], *, root: Path | None = None) -> Ticket:
    """A place at the end of the line for ``run_id`` on ``keys``, held by this process (and by
    the children it passes ``ticket.fd`` to) until it is removed or they all exit."""
    root = root or queue_dir()
    with _line(root):
        return _new_ticket(root, run_id, keys)


def _new_ticket(root: Path, run_id: str, keys: Sequence[str]) -> Ticket:
    """(Under the line lock.)"""
    tickets = root / "tickets"
    tickets.mkdir(exist_ok=True)
    seqs = [int(p.name.split("-", 1)[0]) for p in tickets.glob("*.json") if p.name.split("-", 1)[0].isdigit()]
    path = tickets / f"{max(seqs, default=0) + 1:09d}-{run_id}.json"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
    os.write(fd, json.dumps({"run": run_id, "devices": list(keys), "pid": os.getpid()}).encode())
    return Ticket(path, run_id, tuple(keys), fd)


def read_ticket(path: Path) -> Ticket | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        return Ticket(path, str(obj["run"]), tuple(obj["devices"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(path: Path) -> bool:
    """Someone still holds the ticket (a lock on it fails); a dead one is removed."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)  # a lock taken here goes with it
    path.unlink(missing_ok=True)
    return False


def _waiting(root: Path) -> list[Ticket]:
    """Live tickets in line order (called under the line lock)."""
    out = []
    for path in sorted((root / "tickets").glob("*.json")):
        ticket = read_ticket(path)
        if ticket is not None and _alive(path):
            out.append(ticket)
    return out


def _try_devices(root: Path, keys: Sequence[str], run_id: str) -> tuple[list[int] | None, str | None]:
    """Lock every device in ``keys`` (all or none); (fds, None), or (None, the run holding one)."""
    fds: list[int] = []
    for key in keys:
        fd = os.open(root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: it names the holder
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or None
            os.close(fd)
            for taken in fds:
                os.close(taken)
            return None, holder
        fds.append(fd)
    for fd in fds:
        os.ftruncate(fd, 0)
        os.pwrite(fd, run_id.encode(), 0)
    return fds, None


def try_turn(ticket: Ticket, *, root: Path | None = None) -> Held | Place:
    """The devices, when the ticket's turn has come and they are free (the ticket is then
    removed); else where the ticket stands in line."""
    root = root or queue_dir()
    with _line(root):
        line = _waiting(root)
        mine = next((i for i, t in enumerate(line) if t.path == ticket.path), None)
        if mine is None:  # nobody held it (a runner started without a launcher's ticket): a new one
            fresh = _new_ticket(root, ticket.run_id, ticket.keys)
            ticket.path, ticket.fd = fresh.path, fresh.fd
            line.append(ticket)
            mine = len(line) - 1
        ahead = [t for t in line[:mine] if set(t.keys) & set(ticket.keys)]
        if ahead:
            return Place(len(ahead) + 1, ahead[-1].run_id, _holder(root, ticket.keys))
        fds, holder = _try_devices(root, ticket.keys, ticket.run_id)
        if fds is None:
            return Place(1, None, holder)
        ticket.path.unlink(missing_ok=True)
        if ticket.fd is not None:
            os.close(ticket.fd)
            ticket.fd = None
        return Held(fds)


def _holder(root: Path, keys: Sequence[str]) -> str | None:
    """Who holds one of ``keys`` now (its lock file names it; None when all are free)."""
    for key in keys:
        fds, holder = _try_devices(root, [key], "")
        if fds is None:
            return holder
        for fd in fds:  # free: let go at once (it was only a look)
            os.close(fd)
    return None


def wait_turn(ticket: Ticket, *, should_stop: Callable[[], bool], on_wait: Callable[[Place], None],
              root: Path | None = None, poll_s: float = POLL_S,
              sleep: Callable[[float], None] = time.sleep) -> Held | None:
    """Wait for the ticket's turn: the devices held, or None when ``should_stop()`` said so first
    (the ticket is then given up). ``on_wait`` gets each new place in line."""
    last: Place | None = None
    while True:
        got = try_turn(ticket, root=root)
        if isinstance(got, Held):  # a stop asked for by now is the runner's to honour (a checkpoint first)
            return got
        if should_stop():
            give_up(ticket)
            return None
        if got != last:
            on_wait(got)
            last = got
        sleep(poll_s)


def give_up(ticket: Ticket) -> None:
    """Leave the line."""
    ticket.path.unlink(missing_ok=True)
    if ticket.fd is not None:
        os.close(ticket.fd)
        ticket.fd = None
