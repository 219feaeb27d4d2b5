from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ftui.core.errors import RunNotFoundError
from ftui.core.examples import Example
from ftui.core.runs import HEARTBEAT_STALE_S, create_run, list_runs, resolve_run


def make_run(label="demo", **spec):
    ex = [Example(fields={"question": f"q{i}"}, reference=f"a{i}", line=i + 1) for i in range(6)]
    return create_run(label=label, spec={"preset": label, "task": "sql", "backend": "local",
                                         "model": "smollm2-135m", **spec},
                      splits={"train": ex[:4], "val": ex[4:5], "test": ex[5:]})


def test_create_run_freezes_spec_and_splits():
    run = make_run()
    spec = json.loads((run.dir / "run.json").read_text())
    assert spec["id"] == run.id and spec["ftui_version"] and spec["split_sizes"] == {"train": 4, "val": 1, "test": 1}
    assert [e.reference for e in run.examples("train")] == ["a0", "a1", "a2", "a3"]
    assert run.examples("test")[0].fields == {"question": "q5"}
    assert run.status()["state"] == "queued"


def test_resolve_by_id_prefix_latest_and_errors():
    a = make_run("alpha")
    b = make_run("beta")
    assert resolve_run(a.id).dir == a.dir
    assert resolve_run("latest").dir == b.dir
    # ids share the timestamp prefix: a too-short prefix is ambiguous
    with pytest.raises(RunNotFoundError, match="matches 2 runs"):
        resolve_run(a.id[:8])
    assert resolve_run(a.id.rsplit("-", 1)[0]).dir == a.dir
    with pytest.raises(RunNotFoundError, match="no run matches"):
        resolve_run("zzz")
    assert [r.id for r in list_runs()] == sorted([a.id, b.id])


def test_status_written_atomically_and_lost_when_runner_gone():
    run = make_run()
    run.write_status("running", message="step 3")
    st = run.status()
    assert st["state"] == "running" and st["pid"] == os.getpid()
    assert not list(run.dir.glob(".status.json*"))  # no temp file left behind
    # A finished process with a stale heartbeat: lost.
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    data = json.loads(run.status_path.read_text())
    data.update(pid=int(proc.stdout), heartbeat=time.time() - HEARTBEAT_STALE_S - 5)
    run.status_path.write_text(json.dumps(data))
    assert run.status()["state"] == "lost"
    assert run.summary()["status"] == "lost"
    # A live process with a stale heartbeat is hung, not lost; a fresh heartbeat is running.
    data.update(pid=os.getpid())
    run.status_path.write_text(json.dumps(data))
    assert run.status()["state"] == "running"
    # Terminal states never turn lost.
    data.update(state="succeeded", pid=int(proc.stdout))
    run.status_path.write_text(json.dumps(data))
    assert run.status()["state"] == "succeeded"


def test_one_definition_of_an_active_run():
    from ftui.core.runs import is_active

    assert [s for s in ("queued", "starting", "running", "evaluating", "succeeded", "failed", "cancelled",
                        "lost", "missing") if is_active(s)] == ["queued", "starting", "running", "evaluating"]
    run = make_run()
    assert run.active()  # queued: the runner is about to start
    run.write_status("cancelled")
    assert not run.active()


def test_request_stop_sends_sigterm_after_the_grace_period_and_a_cancelled_wait_returns_at_once():
    from ftui.runner.launch import request_stop

    run = make_run()
    # a "runner" that ignores the stop file and ends on SIGTERM
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        data = {"state": "running", "pid": proc.pid, "host": os.uname().nodename, "heartbeat": time.time()}
        run.status_path.write_text(json.dumps(data))
        started = time.monotonic()
        assert request_stop(run, cancelled=lambda: True) == "running"
        assert time.monotonic() - started < 1 and run.stop_path.exists() and proc.poll() is None
        assert request_stop(run, grace_s=0.3, poll_s=0.02) == "running"  # still "running": no runner wrote
        assert proc.wait(timeout=5) == -15  # SIGTERM
    finally:
        proc.kill()
        proc.wait()


def test_checkpoints_are_published_kept_listed_and_cleaned_without_the_training_stack():
    from ftui.core.checkpoints import clean_partial, last_checkpoint, publish

    run = make_run()
    folder = run.checkpoints_path
    folder.mkdir()
    assert last_checkpoint(folder) is None and publish(folder, 5) is None  # nothing saved yet
    for step in (5, 10, 15):
        (folder / f"checkpoint-{step}").mkdir()
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
        assert publish(folder, step) == folder / f"step-{step}"
    assert sorted(p.name for p in folder.iterdir()) == ["step-10", "step-15"]  # the last two kept
    assert last_checkpoint(folder) == folder / "step-15"
    # a killed runner: a Trainer folder not yet published, a trash folder, a step without its state
    (folder / "checkpoint-20").mkdir()
    (folder / ".trash-step-5").mkdir()
    (folder / "step-25").mkdir()
    assert last_checkpoint(folder) == folder / "step-15"
    assert clean_partial(folder) == [".trash-step-5", "checkpoint-20"]
    assert sorted(p.name for p in folder.iterdir()) == ["step-10", "step-15", "step-25"]


def test_the_runner_warns_when_held_out_rows_repeat_training_rows(ftui_home):
    """Duplicate rows in the data can land in both splits: the run says so at its start."""
    from ftui.core.events import read_events
    from ftui.core.examples import Example
    from ftui.runner.runner import Runner

    def ex(q: str) -> Example:
        return Example(fields={"input": q}, reference="a")

    run = create_run(label="dups", spec={"task": "text", "backend": "local", "model": "m"},
                     splits={"train": [ex("a"), ex("b"), ex("c")], "val": [ex("d")], "test": [ex("b"), ex("e")]})
    Runner(run)._warn_leakage()
    messages = [e["message"] for e in read_events(run.events_path) if e["type"] == "log"]
    assert messages == ["1 of the 2 test rows also appear in the training split (the data has duplicate rows): "
                        "their scores measure memory, not skill; ftui data check lists them"]
