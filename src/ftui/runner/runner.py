"""The detached runner: ``python -m ftui.runner RUN_DIR [--resume] [--eval-only ...]``.

It is the only writer of ``events.jsonl`` and ``status.json``. A heartbeat thread refreshes
``status.json``; a ``stop`` file or SIGTERM ends the current step, saves a checkpoint and
records ``cancelled``. Errors end as ``failed`` with a readable ``error`` event; tracebacks
go to ``runner.log`` only.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from ftui.core.devices import Devices, device_env, entitled_threads, ordinal, resolve_devices
from ftui.core.errors import FtuiError
from ftui.core.events import TERMINAL_STATES, EventWriter
from ftui.core.runs import Run
from ftui.core.scoring import VARIANTS
from ftui.runner.devicequeue import TICKET_ENV, Held, Place, read_ticket, take_ticket, wait_turn
from ftui.runner.launch import uses_local_devices
from ftui.runner.trackers import TrackerFeed, start_trackers

HEARTBEAT_S = 5.0


class Runner:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.events = EventWriter(run.events_path)
        self.state = "starting"
        self.message = ""
        self._sigterm = threading.Event()
        self._done = threading.Event()
        self._status_lock = threading.Lock()  # the heartbeat thread writes status.json too
        self.extra: dict[str, Any] = {}
        self.heldout = ""
        """An eval-only run on ``data/heldout-NAME.jsonl`` instead of the test split."""
        self._devices: Devices | None = None
        self._held: Held | None = None
        """This run's devices in the machine-wide queue, held from before any model loads."""
        self.trackers: TrackerFeed | None = None
        """The experiment trackers (``report_to``), closed as the run ends."""

    # -- status and stop ----------------------------------------------------------------
    def set_state(self, state: str, message: str = "", **extra: Any) -> None:
        if state in TERMINAL_STATES:
            self._close_trackers(state)  # complete there before a viewer reads that the run ended
        with self._status_lock:
            self.state, self.message = state, message
            self.extra.update(extra)
            self.events.write("status", state=state, message=message or None)
            self.run.write_status(self.state, message=self.message, **self.extra)

    def _close_trackers(self, state: str) -> None:
        trackers, self.trackers = self.trackers, None
        if trackers is not None:
            trackers.close(state)

    def _write_status(self) -> None:
        with self._status_lock:
            self.run.write_status(self.state, message=self.message, **self.extra)

    def _heartbeat(self) -> None:
        while not self._done.wait(HEARTBEAT_S):
            self._write_status_quietly()

    def should_stop(self) -> bool:
        return self._sigterm.is_set() or self.run.stop_path.exists()

    # -- the work ------------------------------------------------------------------------
    def main(self, *, resume: bool, eval_only: bool, variants: Sequence[str] | None, limit: int | None,
             heldout: str = "") -> int:
        signal.signal(signal.SIGTERM, lambda *_: self._sigterm.set())
        before = self.run.status().get("previous_state")
        self.final_state = before if eval_only and before in ("cancelled", "failed") else "succeeded"
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        beat.start()
        try:
            if not self._take_devices():
                self.set_state("cancelled", "cancelled while queued: no model was loaded", ended=time.time())
                return 0
            self.trackers = start_trackers(self.run, self.events)  # report_to: fed every event from here on
            self.set_state("starting", "resuming" if resume else ("evaluating" if eval_only else "loading"))
            if not _test_hold(self.should_stop):
                self.set_state("cancelled", "stopped before it started", ended=time.time())
                return 0
            self.heldout = heldout
            code = self._work(resume=resume, eval_only=eval_only, variants=variants, limit=limit)
        except FtuiError as exc:
            self._fail(str(exc), str(exc))
            code = 1
        except OSError as exc:  # a full disk, a read-only folder, a file-size limit
            _print_traceback()
            message = disk_message(exc, self.run)
            self._fail(message, message)
            code = 1
        except Exception as exc:  # noqa: BLE001 - the runner records every failure
            _print_traceback()
            disk = _disk_error(exc, self.run.dir)
            if disk is not None:  # torch and safetensors wrap a failed write in their own errors
                message = disk_message(disk, self.run)
                self._fail(message, message)
            else:
                message = f"{type(exc).__name__}: {exc}".strip()[:500]
                self._fail(f"{message} (traceback in runner.log)", message)
            code = 1
        finally:
            self._close_trackers(self.state)  # when the end could not be recorded as a state
            self._done.set()
            self.events.close()
            if self._held is not None:  # after the last state: the next run starts after this one ended
                self._held.release()
        return code

    # -- the machine-wide queue -------------------------------------------------------------
    def _take_devices(self) -> bool:
        """Wait in the queue until this run's devices are free and hold them (a run of a backend
        that trains elsewhere goes at once); False when stopped while waiting. Sets the devices
        and thread count for everything this process loads from here on."""
        if not uses_local_devices(self.run):
            return True
        devices = resolve_devices(self.run.spec.setting("devices", ()) or ())
        threads = entitled_threads(devices, processes=int(os.environ.get("WORLD_SIZE", "1")))
        os.environ.update(device_env(devices, threads=threads))
        self.extra.update(devices=devices.label, threads=threads)
        given = os.environ.pop(TICKET_ENV, "")
        ticket = read_ticket(Path(given)) if given else None
        if ticket is None:  # started without a launcher (or its ticket is gone): join the line now
            ticket = take_ticket(self.run.id, devices.keys)
        self._devices = devices
        self._held = wait_turn(ticket, should_stop=self.should_stop, on_wait=self._queued)
        self.extra.pop("queue", None)
        return self._held is not None

    def _queued(self, place: Place) -> None:
        label = self._devices.label if self._devices is not None else "its devices"
        if place.place == 1 and place.behind:
            text = f"1st in line behind {place.behind}, which is using {label}"
        elif place.behind:
            text = f"{ordinal(place.place)} in line behind {place.behind}, for {label}"
        else:
            text = f"1st in line for {label}"
        self.set_state("queued", text,
                       queue={"place": place.place, "behind": place.behind, "holder": place.holder})

    def _fail(self, event_message: str, status_message: str) -> None:
        """Record a failure as well as the disk allows: the error event, then ``failed`` in
        ``status.json`` (atomically, else in place: a folder that refuses new files may still
        let the existing file be rewritten), else on stderr (runner.log) at least."""
        try:
            self.events.write("error", message=event_message)
        except OSError:
            pass
        try:
            self.set_state("failed", status_message, ended=time.time())
            return
        except OSError:
            pass
        with self._status_lock:
            self.state, self.message = "failed", status_message
            self.extra["ended"] = time.time()
            try:
                with open(self.run.status_path, "w", encoding="utf-8") as f:
                    json.dump({"state": "failed", "pid": os.getpid(), "heartbeat": time.time(),
                               "updated": time.time(), "message": status_message, **self.extra}, f)
            except OSError as exc:
                print(f"ftui runner: could not record the failure ({exc}): {status_message}", flush=True)

    def _write_status_quietly(self) -> None:
        try:
            self._write_status()
        except OSError:
            pass  # the failure path reports disk trouble; the heartbeat must not die of it

    def _work(self, *, resume: bool, eval_only: bool, variants: Sequence[str] | None, limit: int | None) -> int:
        from ftui.backends.base import TrainJob, load_backend
        from ftui.backends.evaluate import evaluate_run

        backend = load_backend(self.run.spec.backend)
        if not eval_only and not resume:
            self._warn_leakage()
        if not eval_only and not self.run.finetuned_ready():
            trained = backend.train(self.run, TrainJob(events=self.events, should_stop=self.should_stop,
                                                       set_state=self.set_state, resume=resume))
            if trained.state == "cancelled":
                self.set_state("cancelled", trained.message, ended=time.time())
                return 0
        todo = self._todo(variants)
        if todo:
            self.set_state("evaluating", f"evaluating {', '.join(todo)}"
                           + (f" on {self.heldout}" if self.heldout else ""))
            evaluate_run(self.run, backend, variants=todo, limit=limit, events=self.events,
                         should_stop=self.should_stop, heldout=self.heldout)
            if self.should_stop():
                self.set_state("cancelled", "stopped during evaluation", ended=time.time())
                return 0
        return self._end()

    def _warn_leakage(self) -> None:
        """Say so when held-out rows repeat training rows (the data has duplicates): their
        scores measure memory. ``ftui data check`` lists them by line."""
        trained = {ex.key() for ex in self.run.examples("train")}
        for name in ("test", "val"):
            held = self.run.examples(name)
            leaked = sum(ex.key() in trained for ex in held)
            if leaked:
                self.events.write("log", level="warning", message=(
                    f"{leaked} of the {len(held)} {name} rows also appear in the training split (the data "
                    f"has duplicate rows): {'their scores measure memory, not skill' if name == 'test' else 'validation loss on them is optimistic'}; "
                    "ftui data check lists them"))

    def _todo(self, variants: Sequence[str] | None) -> list[str]:
        return list(variants) if variants else [
            v for v in VARIANTS if not (self.run.dir / "eval" / v / "metrics.json").is_file()]

    def _end(self) -> int:
        # A re-evaluation leaves a cancelled or failed training run as it was.
        self.set_state(self.final_state, "done" if self.final_state == "succeeded" else
                       f"evaluated; training is {self.final_state}", ended=time.time())
        return 0


TEST_HOLD_ENV = "FTUI_TEST_HOLD"
"""A test hook: the path of a file; while it exists, a runner that holds its devices waits
before it loads anything (so a test can see the runs behind it queue, deterministically)."""


def _test_hold(should_stop: Callable[[], bool]) -> bool:
    """Wait while the test hook's file exists; False when stopped meanwhile."""
    path = os.environ.get(TEST_HOLD_ENV)
    while path and os.path.exists(path):
        if should_stop():
            return False
        time.sleep(0.1)
    return True


_DISK_WORDS = {"No space left": errno.ENOSPC, "StorageFull": errno.ENOSPC, "Read-only file system": errno.EROFS,
               "File too large": errno.EFBIG, "FileTooLarge": errno.EFBIG, "Disk quota": errno.EDQUOT}


def _disk_error(exc: BaseException, folder: Path) -> OSError | None:
    """The disk failure behind ``exc``, if there is one: an OSError in its chain, words of one
    in its message, or a failed write ("file write failed") on a disk with no space left."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
            return e
        e = e.__cause__ or e.__context__
    text = str(exc)
    for words, code in _DISK_WORDS.items():
        if words in text:
            return OSError(code, os.strerror(code))
    try:
        import shutil

        if "write" in text.lower() and shutil.disk_usage(folder).free < (1 << 20):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError:
        pass
    return None


def disk_message(exc: OSError, run: Run) -> str:
    """A failed write in words: which file, why, and what to do; the checkpoints kept say where
    a resume would start."""
    from ftui.core.checkpoints import last_checkpoint

    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
              errno.EFBIG: "the file grew past this process's file-size limit",
              errno.EROFS: "the file system is read-only",
              errno.EACCES: "permission denied", errno.EPERM: "permission denied"}.get(exc.errno)
    where = f" writing {exc.filename}" if exc.filename else ""
    if reason is None:
        return f"{type(exc).__name__}{where}: {exc.strerror or exc}"
    last = last_checkpoint(run.checkpoints_path)
    kept = f"checkpoints/{last.name} is intact; " if last is not None else ""
    return (f"cannot write{where or ' to the run folder'}: {reason} ({exc.strerror}). {kept}"
            f"fix it, then `ftui resume {run.id}` continues.")


def _print_traceback() -> None:
    """The traceback into runner.log, if the disk lets it: on a full disk even that write fails,
    and the failure must still be recorded after it."""
    try:
        traceback.print_exc()
        sys.stderr.flush()
    except OSError:
        pass
