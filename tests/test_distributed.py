"""Several training processes (DDP through torchrun), tested on CPU with gloo and a tiny model."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from ftui.core.events import read_events
from ftui.core.runs import Run, create_run
from ftui.runner.launch import runner_command

from conftest import run_cli
from test_runner import toy_data

COMMON = ["--set", "eval_every=6", "--set", "learning_rate=0.01", "--set", "lora_r=16",
          "--set", "target_modules=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
          "--set", "split.test=2", "--set", "split.val=4", "--set", "eval.max_new_tokens=2", "--set", "eval.k=1"]


def train(data: Path, model: Path, *extra: str, detach: bool = False) -> Run:
    res = run_cli("train", "--data", str(data), "--task", "text", "--model", str(model), "--json",
                  *(["--detach"] if detach else []), *COMMON, *extra)
    assert res.returncode == 0, res.stderr[-3000:]
    return Run(Path(json.loads(res.stdout)["dir"]))


def train_losses(run: Run) -> dict[int, float]:
    events = [e for e in read_events(run.events_path) if e["type"] == "train"]
    steps = [e["step"] for e in events]
    assert steps == sorted(set(steps)), "a step was written twice"
    return {e["step"]: e["loss"] for e in events}


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.timeout(600)
def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path, tiny_model):
    data = toy_data(tmp_path, n=70)
    two = train(data, tiny_model, "--max-steps", "36", "--set", "num_processes=2", "--set", "batch_size=2")
    one = train(data, tiny_model, "--max-steps", "36", "--set", "batch_size=4")
    for run in (two, one):
        assert run.status()["state"] == "succeeded", (run.dir / "runner.log").read_text()[-2000:]
    logs = " ".join(e["message"] for e in read_events(two.events_path) if e["type"] == "log")
    assert "2 training processes (torchrun)" in logs
    loss2, loss1 = train_losses(two), train_losses(one)
    assert sorted(loss2) == sorted(loss1) == list(range(1, 37))  # each step once
    # The same global batch (2 x 2 and 1 x 4): the loss curves agree, not bit for bit (batches
    # are cut per process), within a tolerance.
    tail2 = sum(loss2[s] for s in range(27, 37)) / 10
    tail1 = sum(loss1[s] for s in range(27, 37)) / 10
    for losses, tail in ((loss2, tail2), (loss1, tail1)):
        assert tail < 0.75 * (losses[1] + losses[2] + losses[3]) / 3  # both learn
    assert abs(tail2 - tail1) <= 0.25 * max(tail1, tail2), (tail1, tail2)
    # The adapter is the one rank 0 saved: equal to its final checkpoint's weights.
    final, checkpoint = tensors(two.dir / "adapter" / "adapter_model.safetensors"), \
        tensors(two.dir / "checkpoints" / "step-36" / "adapter_model.safetensors")
    assert final.keys() == checkpoint.keys() and all((final[k] == checkpoint[k]).all() for k in final)
    assert set(two.eval_metrics()) == {"base", "kshot", "finetuned"}


@pytest.mark.timeout(600)
def test_cancel_and_resume_reach_every_process(tmp_path, tiny_model):
    run = train(toy_data(tmp_path, n=70), tiny_model, "--max-steps", "100", "--set", "num_processes=2",
                "--set", "batch_size=2", detach=True)
    deadline = time.monotonic() + 180
    while not list((run.dir / "checkpoints").glob("step-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    res = run_cli("cancel", run.id)
    assert res.returncode == 0, res.stdout + res.stderr
    assert run.status()["state"] == "cancelled"
    stopped_at = max(train_losses(run))
    assert (run.dir / "checkpoints" / f"step-{stopped_at}").is_dir()  # saved where both stopped
    res = run_cli("resume", run.id, "--detach")
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 400
    while run.status()["state"] not in ("succeeded", "failed", "lost") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.status()["state"] == "succeeded", (run.dir / "runner.log").read_text()[-2000:]
    assert sorted(train_losses(run)) == list(range(1, 101))


def test_runner_command_uses_torchrun_only_for_several_processes(tmp_path):
    def run_with(**hp) -> Run:
        return create_run(label="x", spec={"backend": "local", "hyperparameters": hp}, splits={}, root=tmp_path)

    assert runner_command(run_with(num_processes=1))[1:3] == ["-m", "ftui.runner"]
    cmd = runner_command(run_with(num_processes=4))
    assert cmd[:4] == [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=4"] and "--standalone" in cmd
    assert runner_command(run_with(num_processes=4), eval_only=True)[1:3] == ["-m", "ftui.runner"]
    multi = runner_command(run_with(num_processes=8, nnodes=2, rdzv_endpoint="10.0.0.5:29500"))
    assert "--nnodes=2" in multi and "--node-rank=0" in multi and "--rdzv-endpoint=10.0.0.5:29500" in multi
    assert "--standalone" not in multi


def test_bad_distributed_settings_exit_2():
    for setting, needle in (("distributed=zero3", "ddp or fsdp"), ("nnodes=2", "HOST:PORT"),
                            ("num_processes=-1", "num_processes")):
        res = run_cli("train", "--preset", "demo", "--set", setting)
        assert res.returncode == 2 and needle in res.stderr, res.stderr


@pytest.mark.timeout(600)
@pytest.mark.parametrize("method, saved", [("full", "model"), ("prefix", "adapter")])
def test_two_processes_train_every_method(tmp_path, tiny_model, method, saved):
    """DDP with a method other than LoRA: full fine-tuning (rank 0 saves the whole model) and
    prefix tuning (whose virtual tokens reach the model as past keys and values)."""
    run = train(toy_data(tmp_path, n=40), tiny_model, "--max-steps", "6", "--set", "num_processes=2",
                "--set", "batch_size=2", "--set", f"method={method}", "--set", "num_virtual_tokens=4",
                "--set", "eval.limit=1")
    assert run.status()["state"] == "succeeded", (run.dir / "runner.log").read_text()[-2000:]
    assert sorted(train_losses(run)) == list(range(1, 7))
    assert run.trained_weights() == run.dir / saved
    assert "finetuned" in run.eval_metrics()
