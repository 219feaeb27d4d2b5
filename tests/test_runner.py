"""The runner as a real subprocess on a tiny model: train, stream, stop, kill, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ftui.core.events import read_events
from ftui.core.runs import Run, resolve_run

from conftest import ROOT, run_cli, write_jsonl


def toy_data(tmp_path: Path, n: int = 48) -> Path:
    """A learnable toy task: repeat the colour word."""
    words = ["red", "green", "blue", "black", "white", "pink", "grey", "brown"]
    rows = [{"input": f"Colour {i}: {words[i % len(words)]}. Repeat the colour.", "output": words[i % len(words)]}
            for i in range(n)]
    return write_jsonl(tmp_path / "toy.jsonl", rows)


def start(tmp_path, tiny_model, *extra: str) -> Run:
    res = run_cli("train", "--data", str(toy_data(tmp_path)), "--task", "text", "--model", str(tiny_model),
                  "--detach", "--json", "--set", "batch_size=4", "--set", "eval_every=3",
                  "--set", "learning_rate=0.02", "--set", "lora_r=16",
                  "--set", "target_modules=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "--set", "split.test=4", "--set", "split.val=4",
                  "--set", "eval.max_new_tokens=4", "--set", "eval.k=1", *extra)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["status"] in ("queued", "starting", "running")
    return Run(Path(info["dir"]))


def wait_for(run: Run, states=("succeeded", "failed", "cancelled", "lost"), timeout=180.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run.status()["state"]
        if state in states:
            return state
        time.sleep(0.2)
    raise AssertionError(f"run still {run.status()} after {timeout} s; log: {(run.dir / 'runner.log').read_text()[-2000:]}")


def train_steps(run: Run) -> list[int]:
    return [e["step"] for e in read_events(run.events_path) if e["type"] == "train"]


def final_loss(run: Run) -> float:
    return [e for e in read_events(run.events_path) if e["type"] == "train"][-1]["loss"]


@pytest.mark.timeout(600)
def test_detached_run_trains_evaluates_and_loss_falls(tmp_path, tiny_model):
    run = start(tmp_path, tiny_model, "--epochs", "20", "--set", "eval_every=30")  # few checkpoints: CI time
    assert wait_for(run, timeout=540) == "succeeded", (run.dir / "runner.log").read_text()[-3000:]
    events = read_events(run.events_path)
    train = [e for e in events if e["type"] == "train"]
    assert train_steps(run) == list(range(1, train[-1]["total_steps"] + 1))
    first, last = [e["loss"] for e in train[:3]], [e["loss"] for e in train[-3:]]
    assert sum(last) < 0.5 * sum(first), [e["loss"] for e in train]
    assert train[-1]["tokens"] > train[0]["tokens"] > 0 and train[-1]["tokens_per_s"] > 0
    kinds = {e["type"] for e in events}
    assert {"status", "train", "val", "hw", "cost", "checkpoint", "eval"} <= kinds
    # The CPU speed-ups of backends/local/train.py were on: every training forward of these short
    # batches through eager attention, whole batches, LoRA's dropout replaced on all 7 targets.
    paths = [e["message"] for e in events if e["type"] == "log" and e["message"].startswith("CPU training paths")]
    steps = train[-1]["total_steps"]
    layers = json.loads((tiny_model / "config.json").read_text())["num_hidden_layers"]
    assert paths == [f"CPU training paths: {steps} of {steps} training forwards through eager attention (batches of "
                     f"at most 262144 rows x width^2), the rest sdpa; 0 batch(es) over 1024 positions split into 0 "
                     f"micro-batches; LoRA dropout from 16-bit draws in {7 * layers} module(s)"], paths
    assert (run.dir / "adapter" / "adapter_config.json").is_file()
    show = json.loads(run_cli("show", run.id, "--json").stdout)
    assert show["status"] == "succeeded" and set(show["eval"]) == {"base", "kshot", "finetuned"}
    records = [json.loads(l) for l in open(run.dir / "eval" / "finetuned" / "predictions.jsonl")]
    assert len(records) == 4 and {"input", "reference", "output", "valid", "exact", "latency_s"} <= set(records[0])
    # Re-evaluate one variant on fewer examples through the CLI.
    res = run_cli("eval", run.id, "--variant", "base", "--limit", "2", "--json")
    assert res.returncode == 0, res.stderr
    again = json.loads(res.stdout)
    assert again["status"] == "succeeded"
    assert json.loads((run.dir / "eval" / "base" / "metrics.json").read_text())["n"] == 2


def test_stop_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(tmp_path, tiny_model):
    steps = ["--max-steps", "12", "--set", "eval.limit=1"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = start(tmp_path / "a", tiny_model, *steps)
    assert wait_for(whole) == "succeeded"

    stopped = start(tmp_path / "b", tiny_model, *steps)
    stopped.stop_path.touch()  # the runner ends its first step, saves a checkpoint, stops
    assert wait_for(stopped) == "cancelled"
    checkpoints = [e for e in read_events(stopped.events_path) if e["type"] == "checkpoint"]
    assert checkpoints and (stopped.dir / checkpoints[-1]["path"] / "optimizer.pt").is_file()
    assert len(train_steps(stopped)) < 12

    res = run_cli("resume", stopped.id)
    assert res.returncode == 0, res.stderr
    assert wait_for(stopped) == "succeeded"
    assert train_steps(stopped) == list(range(1, 13))  # every step exactly once
    assert final_loss(stopped) == pytest.approx(final_loss(whole), rel=1e-3)


def test_cancel_command_stops_a_running_run(tmp_path, tiny_model):
    run = start(tmp_path, tiny_model, "--max-steps", "2000", "--set", "eval.limit=1")
    deadline = time.monotonic() + 120
    while not train_steps(run):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    res = run_cli("cancel", run.id)
    assert res.returncode == 0 and "cancelled" in res.stdout, res.stderr
    assert resolve_run(run.id).status()["state"] == "cancelled"
    assert any(e["type"] == "checkpoint" for e in read_events(run.events_path))
    assert len(train_steps(run)) < 2000
    # Evaluating a cancelled run (no adapter yet) runs base and k-shot and leaves it cancelled.
    res = run_cli("eval", run.id, "--limit", "1", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["status"] == "cancelled" and set(info["eval"]) == {"base", "kshot"}
    res = run_cli("eval", run.id, "--variant", "finetuned")
    assert res.returncode == 2 and "has no fine-tuned model yet" in res.stderr


def test_a_bad_setting_ends_as_failed_with_a_readable_message(tmp_path, tiny_model):
    run = start(tmp_path, tiny_model, "--max-steps", "2", "--set", "target_modules=nope_proj")
    assert wait_for(run) == "failed"
    errors = [e["message"] for e in read_events(run.events_path) if e["type"] == "error"]
    assert errors and "target_modules ['nope_proj']" in errors[0] and "Traceback" not in errors[0]
    assert json.loads(run_cli("show", run.id, "--json").stdout)["status"] == "failed"


def test_runner_log_holds_no_library_noise(tmp_path, tiny_model):
    """The first lines a user reads on `l`: no bitsandbytes CPU-kernel notice (made on a CPU with
    AVX512-BF16, as the test machine's), no deprecation warnings between transformers and peft.
    (Its batches also go through micro-batches of one row, which the run's summary counts.)"""
    run = start(tmp_path, tiny_model, "--max-steps", "2", "--set", "eval.limit=1", "--set", "micro_batch_tokens=16")
    assert wait_for(run) == "succeeded"
    log = (run.dir / "runner.log").read_text()
    assert "gemm_4bit" not in log and "FutureWarning" not in log, log
    paths = [e["message"] for e in read_events(run.events_path) if e["type"] == "log"
             and e["message"].startswith("CPU training paths")]
    assert len(paths) == 1 and "2 batch(es) over 16 positions split into 8 micro-batches" in paths[0], paths


def test_quiet_libraries_drops_the_known_notices_and_keeps_the_rest():
    code = textwrap.dedent("""
        import logging, warnings
        from ftui.runner.quiet import quiet_libraries
        quiet_libraries()
        bnb = logging.getLogger("bitsandbytes.backends.cpu.ops")
        bnb.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s.", "No module named 'kernels'")
        bnb.warning("bitsandbytes: something real went wrong")
        warnings.warn_explicit("old API", FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils")
        warnings.warn_explicit("old peft API", FutureWarning, "peft_model.py", 1, module="peft.peft_model")
        warnings.warn_explicit("ours to fix", FutureWarning, "train.py", 1, module="ftui.backends.local.train")
        warnings.warn_explicit("a real problem", UserWarning, "trainer.py", 1, module="transformers.trainer")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert res.returncode == 0, res.stderr
    assert "gemm_4bit" not in res.stderr and "old API" not in res.stderr and "old peft API" not in res.stderr
    assert "something real went wrong" in res.stderr and "ours to fix" in res.stderr and "a real problem" in res.stderr
