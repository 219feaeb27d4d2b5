"""Time spent working (#18 point 2): the ETA and the time of a run leave out the pauses between
runner sessions (a resume hours later, a second try after a failure)."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import pytest

from ftui.core.events import EventWriter
from ftui.core.progress import RunProgress, work_time
from ftui.core.runs import create_run, write_json_atomic

from conftest import run_cli

T0 = 1795000000.0
HOURS_2 = 2 * 3600.0


def ev(kind: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "ts": ts, "type": kind, **fields}


def steps(first: int, last: int, total: int, *, t0: float, every: float) -> list[dict[str, Any]]:
    """Train events ``first..last`` of ``total``, one every ``every`` seconds from ``t0``."""
    return [ev("train", t0 + (s - first + 1) * every, step=s, total_steps=total, epoch=s / total, loss=1.0,
               lr=2e-4, tokens=100 * s, tokens_per_s=50.0) for s in range(first, last + 1)]


def paused_run() -> list[dict[str, Any]]:
    """Steps 1-30 of 100 at 2 s each (loading took 5 s), cancelled; resumed two hours later
    (loading 5 s again), steps 31-40 at 2 s; then still training."""
    first = [ev("status", T0, state="starting", message="loading"), ev("status", T0 + 5, state="running"),
             *steps(1, 30, 100, t0=T0 + 5, every=2.0),
             ev("checkpoint", T0 + 65.5, step=30, path="checkpoints/step-30"),
             ev("status", T0 + 66, state="cancelled", message="stopped")]
    back = T0 + 66 + HOURS_2
    second = [ev("status", back, state="starting", message="resuming"), ev("status", back + 5, state="running"),
              *steps(31, 40, 100, t0=back + 5, every=2.0)]
    return first + second


def test_the_eta_after_a_resume_leaves_the_pause_out():
    events = paused_run()
    resumed_at = next(i for i, e in enumerate(events) if e["type"] == "train" and e["step"] == 31)
    p = RunProgress()
    p.apply(events[:resumed_at + 1])  # the first step after the resume
    # the pace is still the first session's: 69 steps left at 2 s, not two hours per step
    assert p.seconds_per_step() == pytest.approx(2.0) and p.eta_s() == pytest.approx(69 * 2.0)
    p.apply(events[resumed_at + 1:])
    assert p.step == 40 and p.eta_s() == pytest.approx(60 * 2.0)
    # a slower second session: its own pace takes over as its steps come in
    slower = RunProgress()
    slower.apply(events[:resumed_at] + steps(31, 60, 100, t0=T0 + 66 + HOURS_2 + 5, every=4.0))
    assert slower.seconds_per_step() == pytest.approx(4.0) and slower.eta_s() == pytest.approx(40 * 4.0)


def test_working_time_counts_each_session_from_its_start_to_its_end():
    events = paused_run()
    # a runner still at work: its open session counts to its last heartbeat (until)
    worked = work_time(events, until=events[-1]["ts"] + 1)
    assert worked.train_s == pytest.approx(66 + 5 + 20 + 1) and worked.eval_s == 0
    # it evaluates, then succeeds: evaluation apart
    end = events[-1]["ts"]
    done = events + [ev("status", end + 1, state="evaluating", message="evaluating base, kshot, finetuned"),
                     ev("eval_progress", end + 30, variant="base", done=3, total=6, examples_per_s=0.1, eta_s=30.0),
                     ev("status", end + 91, state="succeeded", message="done")]
    worked = work_time(done)
    assert (worked.train_s, worked.eval_s) == (pytest.approx(66 + 5 + 20 + 1), pytest.approx(90))
    # a runner that died without a word ends at its last event; the one that resumes it starts anew
    lost = events[:-1] + [ev("status", end + HOURS_2, state="starting", message="resuming"),
                          ev("status", end + HOURS_2 + 4, state="failed", message="boom")]
    assert work_time(lost).train_s == pytest.approx(66 + (5 + 18) + 4)
    assert work_time([]) is None


def test_time_waiting_in_the_queue_is_no_work():
    """#17: a run queued behind another for ten minutes worked only from its start; one whose
    runner died mid-training and was resumed into the queue counts to its last event only."""
    queued = [ev("status", T0, state="queued", message="1st in line behind A, which is using cpu"),
              ev("status", T0 + 300, state="queued", message="1st in line behind B, which is using cpu"),
              ev("status", T0 + 600, state="starting", message="loading"), ev("status", T0 + 605, state="running"),
              *steps(1, 10, 10, t0=T0 + 605, every=2.0), ev("status", T0 + 626, state="succeeded")]
    assert work_time(queued).train_s == pytest.approx(26)
    died = queued[:-1] + [ev("status", T0 + 9000, state="queued", message="1st in line behind C, which is using cpu"),
                          ev("status", T0 + 9100, state="starting", message="resuming"),
                          ev("status", T0 + 9103, state="cancelled")]
    assert work_time(died).train_s == pytest.approx(25 + 3)
    # and the pace after the wait is the steps' own
    p = RunProgress()
    p.apply(queued[:-1])
    assert p.seconds_per_step() == pytest.approx(2.0)


def test_a_run_that_failed_twice_worked_for_the_sum_of_its_tries(ftui_home):
    """14 s, then a retry 15 minutes later that fails after 6 s: 20 s of work, whatever the clock says."""
    run = create_run(label="twice", spec={"task": "text", "backend": "local", "model": "nosuchmodel"}, splits={})
    t0 = run.spec.created
    with EventWriter(run.events_path) as w:
        w.write("status", ts=t0 + 1, state="starting", message="loading")
        w.write("error", ts=t0 + 15, message="OSError: nosuchmodel is not a model (traceback in runner.log)")
        w.write("status", ts=t0 + 15, state="failed", message="OSError: nosuchmodel is not a model")
        w.write("status", ts=t0 + 900, state="starting", message="resuming")
        w.write("error", ts=t0 + 906, message="OSError: nosuchmodel is not a model (traceback in runner.log)")
        w.write("status", ts=t0 + 906, state="failed", message="OSError: nosuchmodel is not a model")
    write_json_atomic(run.status_path, {"state": "failed", "pid": os.getpid(), "host": socket.gethostname(),
                                        "heartbeat": time.time(), "ended": t0 + 906, "message": "boom"})
    info = run.summary()
    assert (info["train_s"], info["eval_s"], info["duration_s"]) == (20.0, 0.0, 906.0)
    shown = run_cli("show", run.id)
    assert shown.returncode == 0, shown.stderr
    assert "time         training 20s (15m 06s from created to ended, pauses included)" in shown.stdout
    assert "train_s" not in shown.stdout and "duration_s" not in shown.stdout
    as_json = json.loads(run_cli("show", run.id, "--json").stdout)
    assert (as_json["train_s"], as_json["eval_s"], as_json["duration_s"]) == (20.0, 0.0, 906.0)


def test_a_working_run_counts_to_its_runners_last_heartbeat(ftui_home):
    run = create_run(label="busy", spec={"task": "text", "backend": "local", "model": "m"}, splits={})
    t0 = run.spec.created
    with EventWriter(run.events_path) as w:
        w.write("status", ts=t0, state="starting", message="loading")
        w.write("status", ts=t0 + 5, state="running", message="training")
        w.write("train", ts=t0 + 20, step=1, total_steps=10, epoch=0.1, loss=1.0, lr=2e-4, tokens=100,
                tokens_per_s=50.0)
    write_json_atomic(run.status_path, {"state": "running", "pid": os.getpid(), "host": socket.gethostname(),
                                        "heartbeat": t0 + 50, "message": "training"})
    info = run.summary()
    assert (info["train_s"], info["eval_s"], info["duration_s"]) == (50.0, 0.0, None)
