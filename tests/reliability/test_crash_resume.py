"""Crash and resume: the runner is killed with SIGKILL at random points, 20 times in one run
(during a step, while the Trainer writes a checkpoint, just as an event line is written).
Every time `ftui show` says `lost`, the event log parses, and every published checkpoint is
whole; `ftui resume` carries on, and the finished log holds each step exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from ftui.core.events import EventTail, read_events
from ftui.core.runs import HEARTBEAT_STALE_S, Run, write_json_atomic

from conftest import run_cli
from test_runner import toy_data

TRIALS = 20
STEPS = 150
CHECKPOINT_FILES = ("adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "scheduler.pt",
                    "trainer_state.json")


def train_steps(run: Run) -> list[int]:
    return [e["step"] for e in read_events(run.events_path) if e["type"] == "train"]


def running(run: Run, pid_before: int | None, timeout: float = 120) -> int:
    """Wait until a new runner is training; returns its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = run.status()
        if st["state"] in ("succeeded", "failed"):
            raise AssertionError(f"run ended early: {st}; {(run.dir / 'runner.log').read_text()[-1500:]}")
        if st.get("pid") != pid_before and st["state"] == "running":
            return st["pid"]
        time.sleep(0.01)
    raise AssertionError(f"runner did not start training: {run.status()}")


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    while True:
        try:
            os.kill(pid, 0)
            time.sleep(0.01)
        except ProcessLookupError:
            return


def wait_and_kill(run: Run, pid: int, kind: str, rng: random.Random) -> str:
    """Kill the runner at a point of the given kind; returns what was seen at that moment."""
    ckpt = run.dir / "checkpoints"
    deadline = time.monotonic() + 60
    # Progress first: a checkpoint newer than the one this session resumed from, so that the
    # run moves on from trial to trial instead of restarting at the same point.
    start = _newest(ckpt)
    while time.monotonic() < deadline and _newest(ckpt) <= start and kind != "checkpoint":
        time.sleep(0.005)
    if kind == "checkpoint":  # while the Trainer is writing checkpoint-N (before it is published)
        while time.monotonic() < deadline and not list(ckpt.glob("checkpoint-*")):
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))
    elif kind == "event":  # just as the events file grows
        size = run.events_path.stat().st_size
        while time.monotonic() < deadline and run.events_path.stat().st_size == size:
            time.sleep(0.001)
    else:  # during a step, a random time after training resumed
        first = len(train_steps(run))
        while time.monotonic() < deadline and len(train_steps(run)) < first + 1:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.4))
    seen = ",".join(sorted(p.name for p in ckpt.glob("*"))) if ckpt.is_dir() else ""
    kill(pid)
    return seen


def _newest(ckpt: Path) -> int:
    steps = [int(p.name[5:]) for p in ckpt.glob("step-*") if p.name[5:].isdigit()] if ckpt.is_dir() else []
    return max(steps, default=0)


def check_after_kill(run: Run) -> None:
    st = json.loads(run.status_path.read_text())
    st["heartbeat"] = time.time() - HEARTBEAT_STALE_S - 1  # stale now rather than in a minute
    write_json_atomic(run.status_path, st)
    show = json.loads(run_cli("show", run.id, "--json").stdout)
    assert show["status"] == "lost", show
    tail = EventTail(run.events_path)
    tail.read(max_bytes=None)
    assert tail.bad_lines == 0  # a torn last line is held back, never misread
    for folder in (run.dir / "checkpoints").glob("step-*"):
        missing = [f for f in CHECKPOINT_FILES if not (folder / f).is_file()]
        assert not missing, f"{folder.name} is half-written: missing {missing}"
        json.loads((folder / "trainer_state.json").read_text())


@pytest.mark.timeout(900)
def test_twenty_sigkills_then_the_run_finishes_whole(tmp_path, tiny_model):
    rng = random.Random(2026)
    res = run_cli("train", "--data", str(toy_data(tmp_path, n=64)), "--task", "text", "--model", str(tiny_model),
                  "--detach", "--json", "--max-steps", str(STEPS), "--set", "batch_size=4", "--set", "eval_every=3",
                  "--set", "learning_rate=0.02", "--set", "split.test=2", "--set", "split.val=2",
                  "--set", "eval.max_new_tokens=2", "--set", "eval.k=1", "--set", "eval.limit=1")
    assert res.returncode == 0, res.stderr
    run = Run(Path(json.loads(res.stdout)["dir"]))
    pid = running(run, None)
    kinds = []
    for trial in range(TRIALS):
        kind = ("step", "checkpoint", "event")[trial % 3]
        if run.status()["state"] != "running":
            break
        wait_and_kill(run, pid, kind, rng)
        kinds.append(kind)
        check_after_kill(run)
        assert run_cli("resume", run.id, "--detach").returncode == 0
        pid = running(run, pid)
    assert len(kinds) == TRIALS, f"the run finished after {len(kinds)} trials; make it longer"
    deadline = time.monotonic() + 240
    while run.status()["state"] not in ("succeeded", "failed", "lost") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.status()["state"] == "succeeded", (run.dir / "runner.log").read_text()[-3000:]
    assert train_steps(run) == list(range(1, STEPS + 1))
    assert (run.dir / "adapter" / "adapter_model.safetensors").is_file()
    assert not list((run.dir / "checkpoints").glob("checkpoint-*"))
    logs = [e["message"] for e in read_events(run.events_path) if e["type"] == "log"]
    assert sum("resuming from checkpoint" in m or "no checkpoint yet" in m for m in logs) == TRIALS
