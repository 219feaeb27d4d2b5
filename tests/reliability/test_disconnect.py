"""Disconnect: the TUI runs in a pseudo-terminal watching a training run, and the terminal is
hung up (SIGHUP, as when SSH drops). The TUI goes away, the run trains on to the end, and a
new `ftui attach` shows all of it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

import pytest

from ftui.core.events import read_events

from conftest import ROOT, run_cli
from reliability.test_disk import ended, start, wait_until


ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
STEPS = 200


def read_some(fd: int, seconds: float, until: bytes = b"") -> bytes:
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until in ANSI.sub(b"", out)):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


@pytest.mark.timeout(400)
def test_hangup_leaves_the_run_training_and_attach_shows_it_whole(tmp_path, tiny_model):
    # Enough steps to outlast the TUI's start on a loaded machine (all 60 were done before the
    # hangup once, in a full CI run): the hangup must come while the run trains.
    run = start(tmp_path, tiny_model, STEPS)
    wait_until(lambda: any(e["type"] == "train" for e in read_events(run.events_path)) or ended(run),
               what="training to start")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TERM": "xterm-256color"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: ftui on a terminal, as over SSH
        # A login session's default: hangup ends the process. (A test run under nohup ignores
        # SIGHUP, and an ignored signal stays ignored across exec.)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        os.execve(sys.executable, [sys.executable, "-m", "ftui", "attach", run.id], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    screen = read_some(fd, 90.0, until=b"Cancel run")  # a loaded machine takes its time to start it
    assert b"Cancel run" in ANSI.sub(b"", screen), screen[-500:]
    screen += read_some(fd, 2.0)
    steps_at_hangup = len([e for e in read_events(run.events_path) if e["type"] == "train"])
    os.kill(pid, signal.SIGHUP)  # the terminal is gone
    os.close(fd)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the TUI did not exit after SIGHUP")
    assert run.status()["state"] in ("running", "evaluating", "succeeded")
    wait_until(lambda: ended(run), timeout=300, what="the run to finish")
    assert run.status()["state"] == "succeeded"
    steps = [e["step"] for e in read_events(run.events_path) if e["type"] == "train"]
    assert steps_at_hangup < STEPS, "the run had finished before the hangup: nothing was tested"
    assert steps == list(range(1, STEPS + 1)) and len(steps) > steps_at_hangup
    again = run_cli("attach", run.id, "--plain")
    assert again.returncode == 0
    assert [ln for ln in again.stdout.splitlines() if ln.startswith("step ")][-1].startswith(f"step {STEPS}/{STEPS}")
    assert again.stdout.rstrip().endswith(f"run {run.id}: succeeded")
