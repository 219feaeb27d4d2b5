"""Disk and environment: a full disk, a file-size limit and a read-only checkpoints folder
while a run writes end in `failed` with a clear message, the checkpoints already published
stay whole (and `ftui resume` finishes the run once space is back); two viewers watching one
run do not interfere with it or with each other."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftui.core.events import read_events
from ftui.core.runs import Run

from conftest import ROOT, run_cli
from test_runner import toy_data

CHECKPOINT_FILES = ("adapter_model.safetensors", "optimizer.pt", "trainer_state.json")


def start(tmp_path: Path, tiny_model: Path, steps: int, env: dict | None = None) -> Run:
    res = run_cli("train", "--data", str(toy_data(tmp_path, n=64)), "--task", "text", "--model", str(tiny_model),
                  "--detach", "--json", "--max-steps", str(steps), "--set", "batch_size=4", "--set", "eval_every=4",
                  "--set", "split.test=2", "--set", "split.val=2", "--set", "eval.max_new_tokens=2",
                  "--set", "eval.k=1", "--set", "eval.limit=1", env=env)
    assert res.returncode == 0, res.stderr
    return Run(Path(json.loads(res.stdout)["dir"]))


def wait_until(cond, timeout=180.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def published(run: Run) -> list[Path]:
    return sorted((run.dir / "checkpoints").glob("step-*"), key=lambda p: int(p.name[5:]))


def ended(run: Run) -> bool:
    return run.status()["state"] in ("succeeded", "failed", "cancelled", "lost")


def assert_whole(folder: Path) -> None:
    missing = [f for f in CHECKPOINT_FILES if not (folder / f).is_file()]
    assert not missing, f"{folder} lacks {missing}"
    json.loads((folder / "trainer_state.json").read_text())


@pytest.fixture
def small_disk(tmp_path, ftui_home):
    """A 48 MB tmpfs as FTUI_HOME (needs mount rights: root in a container that allows it)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    os.symlink(ftui_home / "models", mnt / "models")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.timeout(600)
def test_full_disk_fails_clearly_keeps_checkpoints_and_resumes(tmp_path, tiny_model, small_disk):
    env = {"FTUI_HOME": str(small_disk)}
    run = start(tmp_path, tiny_model, 160, env=env)
    wait_until(lambda: len(published(run)) >= 1 or ended(run), what="a first checkpoint")
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # take every free byte
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass
    wait_until(lambda: ended(run), what="the run to end")
    st = run.status()
    assert st["state"] == "failed", (st, (run.dir / "runner.log").read_text()[-3000:])
    assert "the disk is full" in st["message"] and f"ftui resume {run.id}" in st["message"], st["message"]
    assert "Traceback" not in st["message"]
    for folder in published(run):
        assert_whole(folder)
    steps_before = [e["step"] for e in read_events(run.events_path) if e["type"] == "train"]
    assert steps_before
    filler.unlink()
    # Space is back: the run continues from its last whole checkpoint and finishes.
    shutil.rmtree(run.dir / "eval", ignore_errors=True)
    res = run_cli("resume", run.id, "--detach", env=env)
    assert res.returncode == 0, res.stderr
    wait_until(lambda: ended(run), timeout=400, what="the resumed run")
    assert run.status()["state"] == "succeeded", (run.dir / "runner.log").read_text()[-2000:]
    assert [e["step"] for e in read_events(run.events_path) if e["type"] == "train"] == list(range(1, 161))


def test_a_file_size_limit_fails_the_run_clearly(tmp_path, tiny_model):
    run = start(tmp_path, tiny_model, 400)
    wait_until(lambda: len(published(run)) >= 1 or ended(run), what="a first checkpoint")
    pid = run.status()["pid"]
    limit = run.events_path.stat().st_size + 4096  # the next few event lines, then no more
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, limit))
    wait_until(lambda: ended(run), what="the run to end")
    st = run.status()
    assert st["state"] == "failed", (st, (run.dir / "runner.log").read_text()[-3000:])
    assert "file-size limit" in st["message"] and "ftui resume" in st["message"], st["message"]
    for folder in published(run):
        assert_whole(folder)


@pytest.mark.timeout(600)
def test_read_only_checkpoints_folder_fails_the_run_clearly(tmp_path, tiny_model):
    run = start(tmp_path, tiny_model, 400)
    wait_until(lambda: len(published(run)) >= 1 or ended(run), what="a first checkpoint")
    folder = run.dir / "checkpoints"
    if os.geteuid() == 0:  # root writes through permissions: make it a read-only mount
        ok = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0 and \
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode == 0
        if not ok:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
            run_cli("cancel", run.id)
            pytest.skip("cannot make a read-only bind mount here")
    else:
        folder.chmod(0o555)
    try:
        wait_until(lambda: ended(run), what="the run to end")
        st = run.status()
        assert st["state"] == "failed", (st, (run.dir / "runner.log").read_text()[-3000:])
        assert ("read-only" in st["message"] or "permission denied" in st["message"]), st["message"]
        assert "ftui resume" in st["message"]
        for ckpt in published(run):
            assert_whole(ckpt)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)


def test_two_viewers_watch_one_run_without_interfering(tmp_path, tiny_model):
    run = start(tmp_path, tiny_model, 40)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    viewers = [subprocess.Popen([sys.executable, "-m", "ftui", "attach", run.id, "--plain"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [v.communicate(timeout=300) for v in viewers]
    assert [v.returncode for v in viewers] == [0, 0], outs
    assert run.status()["state"] == "succeeded"
    lines = [[ln for ln in out.splitlines() if ln.startswith("step ")] for out, _ in outs]
    assert lines[0] == lines[1] and len(lines[0]) == 40
    assert all(out.rstrip().endswith(f"run {run.id}: succeeded") for out, _ in outs)
    assert [e["step"] for e in read_events(run.events_path) if e["type"] == "train"] == list(range(1, 41))
