"""The machine-wide queue of local runs (#17 point 4): runs on the same devices take turns in
the order they were launched, a queued run can be cancelled before it loads anything, and runs
on disjoint devices go side by side. The line itself is tested in-process; the runs are real
runner subprocesses on the tiny model, held at their start by the runner's test hook
(``FTUI_TEST_HOLD``) so that who waits for whom never depends on timing."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from ftui.core.events import read_events
from ftui.core.runs import Run, create_run
from ftui.runner.devicequeue import Held, Place, take_ticket, try_turn, wait_turn

from conftest import run_cli, write_jsonl


# -- the line, in-process ---------------------------------------------------------------------

def test_the_line_is_first_come_first_served_per_device(tmp_path):
    root = tmp_path / "queue"
    a, b, c = (take_ticket(name, ["cpu"], root=root) for name in "ABC")
    g1 = take_ticket("G1", ["gpu1"], root=root)
    both = take_ticket("G12", ["gpu1", "gpu2"], root=root)
    g2 = take_ticket("G2", ["gpu2"], root=root)
    # B comes after A: it waits though nobody holds the CPU yet
    assert try_turn(b, root=root) == Place(2, "A", None)
    held_a = try_turn(a, root=root)
    assert isinstance(held_a, Held)
    assert try_turn(b, root=root) == Place(1, None, "A")
    assert try_turn(c, root=root) == Place(2, "B", "A")
    # another device goes at once; a run on two waits for either, and who comes after it waits too
    assert isinstance(try_turn(g1, root=root), Held)
    assert try_turn(both, root=root) == Place(1, None, "G1")
    assert try_turn(g2, root=root) == Place(2, "G12", None)
    # a waiting run whose runner died (its ticket no longer held) leaves the line
    os.close(b.fd)
    b.fd = None
    assert try_turn(c, root=root) == Place(1, None, "A")
    held_a.release()  # as the runner's exit would
    assert isinstance(try_turn(c, root=root), Held)


def test_waiting_ends_when_the_run_is_stopped_and_it_leaves_the_line(tmp_path):
    root = tmp_path / "queue"
    first = take_ticket("A", ["cpu"], root=root)
    assert isinstance(try_turn(first, root=root), Held)
    waiting = take_ticket("B", ["cpu"], root=root)
    after = take_ticket("C", ["cpu"], root=root)
    seen, polls = [], iter(range(3))
    got = wait_turn(waiting, should_stop=lambda: next(polls, 3) >= 2, on_wait=seen.append, root=root,
                    sleep=lambda s: None)
    assert got is None and seen == [Place(1, None, "A")]
    assert not waiting.path.exists()
    assert try_turn(after, root=root) == Place(1, None, "A")  # C moved up


# -- real runners --------------------------------------------------------------------------

def toy_data(tmp_path: Path, n: int = 24) -> Path:
    words = ["red", "green", "blue", "black"]
    rows = [{"input": f"Colour {i}: {words[i % 4]}. Repeat the colour.", "output": words[i % 4]} for i in range(n)]
    return write_jsonl(tmp_path / "toy.jsonl", rows)


SMALL = ("--max-steps", "2", "--set", "batch_size=4", "--set", "split.test=2", "--set", "split.val=2",
         "--set", "eval.limit=1", "--set", "eval.max_new_tokens=2", "--set", "eval.k=1", "--set", "eval_every=50")


def start(data: Path, model: Path, env: dict) -> Run:
    res = run_cli("train", "--data", str(data), "--task", "text", "--model", str(model), "--detach", "--json",
                  *SMALL, env=env)
    assert res.returncode == 0, res.stderr
    return Run(Path(json.loads(res.stdout)["dir"]))


def wait_until(check, what: str, runs: list[Run], timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    logs = "\n".join(f"{r.id}: {r.status()} {(r.dir / 'runner.log').read_text()[-1500:]}" for r in runs)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def statuses(run: Run) -> list[dict]:
    return [e for e in read_events(run.events_path) if e["type"] == "status"]


@pytest.mark.timeout(600)
def test_two_runs_take_turns_and_a_queued_run_can_be_cancelled(tmp_path, tiny_model):
    hold = tmp_path / "hold"
    hold.touch()
    env = {"FTUI_TEST_HOLD": str(hold)}
    data = toy_data(tmp_path)
    first, second, third = (start(data, tiny_model, env) for _ in range(3))
    runs = [first, second, third]
    wait_until(lambda: first.status()["state"] == "starting" and (third.status().get("queue") or {}).get("place") == 2,
               "the first run to hold the CPU and the third to stand 2nd in line", runs)
    # ftui runs --json, ftui show: the place in line and whom each waits for
    rows = {r["id"]: r for r in json.loads(run_cli("runs", "--json").stdout)}
    assert rows[first.id]["status"] == "starting" and rows[first.id]["queue"] is None
    assert rows[first.id]["devices"] == "cpu" and rows[first.id]["threads"] == len(os.sched_getaffinity(0))
    assert rows[second.id]["status"] == "queued"
    assert rows[second.id]["queue"] == {"place": 1, "behind": first.id, "holder": first.id}
    assert rows[third.id]["queue"] == {"place": 2, "behind": second.id, "holder": first.id}
    show = run_cli("show", third.id).stdout
    assert f"queued, 2nd in line behind {second.id}, for cpu" in show, show
    listing = run_cli("runs").stdout
    assert f"1st in line behind {first.id}" in listing, listing

    # The third leaves the line: cancelled, nothing loaded, never started.
    res = run_cli("cancel", third.id)
    assert res.returncode == 0 and f"run {third.id}: cancelled" in res.stdout, res.stderr
    assert "out of the queue" in res.stderr
    assert [e["state"] for e in statuses(third)] == ["queued", "cancelled"]
    assert "no model was loaded" in third.status()["message"]
    assert not [e for e in read_events(third.events_path) if e["type"] not in ("status",)]

    hold.unlink()  # the first loads, trains and evaluates; then the second
    wait_until(lambda: second.status()["state"] in ("succeeded", "failed", "cancelled", "lost"),
               "the second run to end", runs, timeout=480)
    assert first.status()["state"] == "succeeded" and second.status()["state"] == "succeeded", second.status()
    first_end = statuses(first)[-1]["ts"]
    second_states = statuses(second)
    second_start = next(e["ts"] for e in second_states if e["state"] == "starting")
    assert second_start >= first_end  # it began only once the first had ended
    assert second_states[0]["state"] == "queued" and first.id in second_states[0]["message"]
    assert [e for e in read_events(second.events_path) if e["type"] == "train"]
    # the time waiting is not work: its time is from its own start on
    info = json.loads(run_cli("show", second.id, "--json").stdout)
    assert info["train_s"] + info["eval_s"] <= statuses(second)[-1]["ts"] - second_start + 1.0
    hw = [e for e in read_events(first.events_path) if e["type"] == "hw"]
    assert hw and hw[-1]["threads"] == len(os.sched_getaffinity(0))


def _run_on(devices: tuple[str, ...], data: Path, model: Path) -> Run:
    """A run made as ``ftui train`` makes it, on GPU ids this machine may not have: the runner
    only uses them as the queue's keys and CUDA_VISIBLE_DEVICES (so a CPU machine runs two sets)."""
    from ftui.core.request import RunRequest, resolve_request

    resolved = resolve_request(RunRequest(data=data, task="text", model=str(model), overrides=SMALL[2:][1::2],
                                          max_steps=2))
    spec = dataclasses.replace(resolved.spec, hyperparameters=dataclasses.replace(
        resolved.spec.hyperparameters, devices=devices))
    return create_run(label=resolved.label, spec=spec, splits=resolved.splits)


@pytest.mark.timeout(300)
def test_runs_on_disjoint_devices_go_side_by_side(tmp_path, tiny_model, monkeypatch):
    from ftui.runner.launch import launch

    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("FTUI_TEST_HOLD", str(hold))
    data = toy_data(tmp_path)
    zero, one, both = (_run_on(d, data, tiny_model) for d in (("0",), ("1",), ("0", "1")))
    for run in (zero, one, both):
        launch(run)
    runs = [zero, one, both]
    wait_until(lambda: zero.status()["state"] == "starting" and one.status()["state"] == "starting"
               and both.status().get("queue"), "GPU 0 and GPU 1 to start, GPUs 0,1 to queue", runs)
    assert zero.status()["devices"] == "GPU 0" and one.status()["devices"] == "GPU 1"
    assert "queued" not in [e["state"] for e in statuses(one)]  # it never waited for the other GPU
    assert both.status()["queue"] == {"place": 1, "behind": zero.id, "holder": zero.id}
    for run in runs:
        run.stop_path.touch()
    wait_until(lambda: all(r.status()["state"] == "cancelled" for r in runs), "all three to cancel", runs)


def test_devices_setting_is_checked_before_anything_starts(tmp_path, tiny_model):
    data = toy_data(tmp_path)
    base = ("train", "--data", str(data), "--task", "text", "--model", str(tiny_model), "--detach")
    res = run_cli(*base, "--set", "devices=0,0")
    assert res.returncode == 2 and "local.devices: names a GPU twice: 0,0" in res.stderr, res.stderr
    res = run_cli(*base, "--set", "devices=gpu1")
    assert res.returncode == 2 and "must be GPU ids" in res.stderr and "'gpu1'" in res.stderr, res.stderr
    if shutil.which("nvidia-smi") is None:
        res = run_cli(*base, "--set", "devices=0")
        assert res.returncode == 2 and "this machine has no GPU" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_devices_and_thread_counts_follow_the_machine_and_the_setting():
    from ftui.core.devices import device_env, entitled_threads, resolve_devices

    # default: every visible GPU (CUDA_VISIBLE_DEVICES), else all of them, else the CPU
    assert resolve_devices((), env={"CUDA_VISIBLE_DEVICES": "2,3"}, machine_gpus=4).gpus == ("2", "3")
    assert resolve_devices((), env={}, machine_gpus=2).keys == ("gpu0", "gpu1")
    cpu = resolve_devices((), env={}, machine_gpus=0)
    assert cpu.keys == ("cpu",) and cpu.label == "cpu"
    # the CPU alone gets every core; a GPU run its share of them, split between its processes
    assert entitled_threads(cpu, cores=16) == 16
    one = resolve_devices(("1",), env={"CUDA_VISIBLE_DEVICES": "0"}, machine_gpus=4)
    assert one.label == "GPU 1" and entitled_threads(one, cores=16) == 4
    assert entitled_threads(resolve_devices(("0", "1"), env={}, machine_gpus=4), cores=16, processes=2) == 4
    assert device_env(one, threads=4) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4", "CUDA_VISIBLE_DEVICES": "1"}
    # devices=cpu on a GPU machine hides the GPUs; on a CPU machine there is nothing to hide
    hidden = resolve_devices(("cpu",), env={}, machine_gpus=2)
    assert device_env(hidden, threads=16)["CUDA_VISIBLE_DEVICES"] == ""
    assert "CUDA_VISIBLE_DEVICES" not in device_env(cpu, threads=2)


def test_only_runs_that_compute_here_stand_in_line(tmp_path):
    """An OpenAI run trains at OpenAI: it never waits for this machine's devices."""
    from ftui.runner.launch import uses_local_devices

    def made(backend: str) -> Run:
        return create_run(label=backend, root=tmp_path, splits={}, spec={
            "preset": "demo", "task": "sql", "backend": backend, "model": "m", "hyperparameters": {"model": "m"}})

    assert uses_local_devices(made("local")) and not uses_local_devices(made("openai"))
