"""`ftui study`: one run per backend and model on the same data, and the comparison table."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftui.core.errors import ConfigError
from ftui.core.runs import create_run
from ftui.core.study import create_study, parse_models, studies_dir
from ftui.runner.study_driver import overrides_for

from conftest import run_cli
from openai_standin import StandIn
from test_runner import toy_data

LOCAL = ["--set", "local.batch_size=4", "--set", "local.learning_rate=0.02", "--set", "local.lora_r=16",
         "--set", "local.eval_every=5", "--set", "local.epochs=3",
         "--set", "split.test=4", "--set", "split.val=4", "--set", "eval.max_new_tokens=4", "--set", "eval.k=1"]
OPENAI = ["--set", "openai.poll_interval_s=0.05", "--set", "openai.request_timeout_s=5"]


def test_local_and_openai_rows_in_one_table(tmp_path, tiny_model):
    standin = StandIn().start()
    try:
        data = toy_data(tmp_path)
        standin.answers = {}  # the toy task's fine-tuned answers are set below from the test split
        words = ["red", "green", "blue", "black", "white", "pink", "grey", "brown"]
        standin.answer = lambda model, messages, _: (
            next(w for w in words if w in messages[-1]["content"]) if model.startswith("ft:") else "I think so")
        res = run_cli("study", "--data", str(data), "--task", "text", "--backends", "local,openai",
                      "--models", f"local:{tiny_model}", *LOCAL, *OPENAI, "--json", env=standin.env())
    finally:
        standin.stop()
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert set(out["states"].values()) == {"succeeded"}
    rows = out["rows"]
    assert [(r["backend"], r["variant"]) for r in rows] == [
        (b, v) for b in ("local", "openai") for v in ("base", "kshot", "finetuned")]
    assert all(r["n"] == 4 for r in rows)
    by = {(r["backend"], r["variant"]): r for r in rows}
    assert by[("openai", "finetuned")]["metrics"]["exact"] == 1.0
    assert by[("openai", "finetuned")]["most_accurate"]
    assert by[("openai", "finetuned")]["training_usd"] > 0 and by[("openai", "base")]["training_usd"] is None
    assert by[("openai", "base")]["eval_usd_per_1k"] > 0
    assert by[("local", "finetuned")]["training_s"] > 0
    # On a CPU without price_per_hour, the local rows cost $0 and are the cheapest.
    assert by[("local", "base")]["cheapest"] and by[("local", "base")]["total_usd_per_1k"] == 0.0
    folder = Path(out["dir"])
    md = (folder / "table.md").read_text()
    assert "most accurate" in md and "cheapest" in md and "| openai |" in md
    with open(folder / "table.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 6
    assert json.loads((folder / "table.json").read_text())["primary_metric"] == "exact"
    # Picking the study up again re-makes the table without starting anything.
    again = run_cli("study", out["id"], "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["rows"] == rows


def test_models_and_settings_are_assigned_to_backends():
    assert parse_models([], ["local", "openai"]) == [("local", None), ("openai", None)]
    assert parse_models(["local:a", "local:b"], ["local"]) == [("local", "a"), ("local", "b")]
    assert parse_models(["x"], ["openai"]) == [("openai", "x")]
    with pytest.raises(ConfigError, match="say which backend"):
        parse_models(["x"], ["local", "openai"])
    with pytest.raises(ConfigError, match="not in --backends"):
        parse_models(["openai:gpt-4.1"], ["local"])
    items = ["lora_r=4", "n_epochs=2", "local.epochs=2", "openai.budget_usd=1", "eval.k=1", "batch_size=4"]
    assert overrides_for("local", items) == ["lora_r=4", "epochs=2", "eval.k=1", "batch_size=4"]
    assert overrides_for("openai", items) == ["n_epochs=2", "budget_usd=1", "eval.k=1", "batch_size=4"]


def test_bad_study_input_exits_2_before_anything_starts():
    res = run_cli("study", "--preset", "demo", "--backends", "local,gpu")
    assert res.returncode == 2 and "--backends" in res.stderr
    res = run_cli("study", "--preset", "demo", "--set", "lora_rank=4")
    assert res.returncode == 2 and "lora_rank" in res.stderr
    res = run_cli("study", "nothing-here")
    assert res.returncode == 2 and "no study matches" in res.stderr
    assert json.loads(run_cli("runs", "--json").stdout) == []


def _gone(pid: int) -> bool:
    """The process has exited (it is not our child: once its parent exits, init reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_detach_returns_at_once_and_the_background_driver_finishes_the_study(tmp_path):
    standin = StandIn().start()
    try:
        res = run_cli("study", "--data", str(toy_data(tmp_path)), "--task", "text", "--backends", "openai",
                      "--set", "split.test=4", "--set", "split.val=4", *OPENAI, "--detach", "--json",
                      env=standin.env())
        assert res.returncode == 0, res.stderr[-3000:]
        out = json.loads(res.stdout)
        folder = Path(out["dir"])
        assert (folder / "study.json").is_file() and [r["backend"] for r in out["runs"]] == ["openai"]
        assert not (folder / "table.md").exists()  # the command did not wait for the run
        deadline = time.monotonic() + 120
        while not _gone(out["pid"]):
            assert time.monotonic() < deadline, (folder / "study.log").read_text()[-3000:]
            time.sleep(0.2)
    finally:
        standin.stop()
    log = (folder / "study.log").read_text()
    assert f"started {out['runs'][0]['id']} (openai" in log, log[-3000:]
    data = json.loads((folder / "table.json").read_text())
    assert data["study"] == out["id"] and [r["variant"] for r in data["rows"]] == ["base", "kshot", "finetuned"]
    assert "SECRET" not in log and "STANDIN" not in log


def test_detach_with_a_bad_setting_exits_2_and_starts_nothing():
    from ftui.tui.services import StudyStartError, start_study

    res = run_cli("study", "--preset", "demo", "--set", "lora_rank=4", "--detach", "--json")
    assert res.returncode == 2 and "lora_rank" in res.stderr and res.stdout == ""
    # the TUI's service runs the same command and hands back the CLI's one paragraph
    with pytest.raises(StudyStartError, match="lora_rank") as refused:
        start_study(preset="demo", backends=["local"], overrides=["lora_rank=4"])
    assert "ftui: error" not in str(refused.value)
    assert not studies_dir().is_dir() or not list(studies_dir().iterdir())


def test_two_drivers_of_one_study_launch_each_run_once(monkeypatch):
    import ftui.runner.study_driver as studies

    runs = [create_run(label="demo", spec={"backend": "local", "model": m}, splits={}) for m in ("a", "b")]
    study = create_study(preset="demo", label="demo", runs=runs)
    launched = []

    def slow_launch(run):  # as a real launch: the runner's pid is in status.json only some time later
        launched.append(run.id)
        time.sleep(0.2)
        run.write_status("succeeded")
        return os.getpid()

    monkeypatch.setattr(studies, "launch", slow_launch)
    drivers = [threading.Thread(target=studies.run_study, args=(study,), kwargs={"out": io.StringIO(), "poll_s": 0.01})
               for _ in range(2)]
    for d in drivers:
        d.start()
    for d in drivers:
        d.join(timeout=30)
    assert sorted(launched) == sorted(r.id for r in runs)


class _FakeNvml:
    """What pynvml answers on a machine with one NVIDIA A40 (names come back as bytes in older pynvml)."""

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA A40"

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=10 * 2**30, total=48 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=97)

    def nvmlDeviceGetPowerUsage(self, h):
        return 250_000


def test_eval_cost_on_a_gpu_uses_the_gpu_price_recorded_in_hw_events():
    from ftui.core.cost import hardware_price
    from ftui.core.events import EventWriter
    from ftui.core.machine import HwReading, NvmlGpus
    from ftui.core.study import table

    run = create_run(label="demo", spec={"backend": "local", "model": "m", "task": "text",
                                         "hyperparameters": {}}, splits={})
    # the local runner's hw event, as its sampler writes it on a GPU read through NVML
    reading = HwReading.of(NvmlGpus(_FakeNvml()).read(), cpu_percent=100.0, rss_bytes=2**30)
    writer = EventWriter(run.events_path)
    writer.write("hw", **reading.to_event())
    writer.close()
    (run.dir / "eval" / "finetuned").mkdir(parents=True)
    (run.dir / "eval" / "finetuned" / "metrics.json").write_text(json.dumps(
        {"variant": "finetuned", "n": 200, "duration_s": 36.0, "metrics": {"exact": 0.5}}))
    [row] = table([run])["rows"]
    per_hour = hardware_price("NVIDIA A40").per_hour
    assert per_hour > 0
    assert row["eval_usd_per_1k"] == pytest.approx(per_hour * 36.0 / 3600 / 200 * 1000, rel=1e-3)
