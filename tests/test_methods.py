"""Every training method on the tiny model, as a real runner subprocess: the loss falls, the
result lands where it should (adapter/ or model/), the hw events carry the parameter counts,
and a stop + resume ends where an uninterrupted run does."""

from __future__ import annotations

import json

import pytest

from ftui.core.config import METHODS
from ftui.core.events import read_events
from ftui.core.runs import Run

from conftest import run_cli
from test_runner import final_loss, start, toy_data, train_steps, wait_for

LEARNING_RATES = {"lora": 0.02, "dora": 0.02, "ia3": 0.2, "prefix": 0.5, "full": 0.002}
"""Rates that move the tiny model within 12 steps (IA3 and prefix tuning want far more)."""


def method_run(tmp_path, tiny_model, method: str) -> Run:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return start(tmp_path, tiny_model, "--max-steps", "12", "--set", "eval.limit=1", "--set", f"method={method}",
                 "--set", f"learning_rate={LEARNING_RATES[method]}", "--set", "num_virtual_tokens=16")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_learns_saves_its_weights_and_resumes_exactly(tmp_path, tiny_model, method):
    whole = method_run(tmp_path / "whole", tiny_model, method)
    assert wait_for(whole) == "succeeded", (whole.dir / "runner.log").read_text()[-3000:]
    losses = [e["loss"] for e in read_events(whole.events_path) if e["type"] == "train"]
    assert sum(losses[-3:]) < 0.85 * sum(losses[:3]), losses
    saved = whole.trained_weights()
    assert saved == (whole.model_path if method == "full" else whole.adapter_path)
    assert not (whole.adapter_path if method == "full" else whole.model_path).exists()
    hw = [e for e in read_events(whole.events_path) if e["type"] == "hw"][-1]
    assert hw["method"] == method and hw["peak_mem_bytes"] > 0
    assert 0 < hw["trainable_params"] <= hw["total_params"]
    assert (hw["trainable_params"] == hw["total_params"]) == (method == "full")
    assert "finetuned" in whole.eval_metrics()
    shown = run_cli("show", whole.id).stdout
    assert f"method       {method}" in shown and "peak memory" in shown
    assert f"trainable    {'3.22M of 3.22M parameters (100.00%)' if method == 'full' else ''}" in shown
    assert run_cli("export", whole.id, "--format", "json", "--out", str(tmp_path / "summary.json")).returncode == 0
    training = json.loads((tmp_path / "summary.json").read_text())["training"]
    assert training["weights"] == saved.name and training["method"] == method

    stopped = method_run(tmp_path / "stopped", tiny_model, method)
    stopped.stop_path.touch()  # the runner ends its first step, saves a checkpoint, stops
    assert wait_for(stopped) == "cancelled"
    assert len(train_steps(stopped)) < 12
    res = run_cli("resume", stopped.id)
    assert res.returncode == 0, res.stderr
    assert wait_for(stopped) == "succeeded", (stopped.dir / "runner.log").read_text()[-3000:]
    assert train_steps(stopped) == list(range(1, 13))  # every step exactly once
    assert final_loss(stopped) == pytest.approx(final_loss(whole), rel=1e-3)


@pytest.mark.parametrize("method, quantization", [("full", "4bit"), ("prefix", "8bit"), ("ia3", "4bit")])
def test_a_method_that_cannot_train_quantized_is_refused_before_a_run_exists(tmp_path, tiny_model, method,
                                                                             quantization, ftui_home):
    res = run_cli("train", "--data", str(toy_data(tmp_path)), "--task", "text", "--model", str(tiny_model),
                  "--set", f"method={method}", "--set", f"quantization={quantization}")
    assert res.returncode == 2
    assert f"method={method}" in res.stderr and "quantization=none" in res.stderr and "Traceback" not in res.stderr
    assert not (ftui_home / "runs").exists() or not any((ftui_home / "runs").iterdir())


def test_an_unknown_method_names_the_choices(tmp_path, tiny_model):
    res = run_cli("train", "--data", str(toy_data(tmp_path)), "--task", "text", "--set", "method=lorax")
    assert res.returncode == 2 and "lora, dora, ia3, prefix, full" in res.stderr, res.stderr


def test_switching_method_without_a_rate_takes_the_methods_own():
    from ftui.core.request import RunRequest, resolve_request

    def rate(*overrides: str) -> float:
        return resolve_request(RunRequest(preset="demo", overrides=overrides)).spec.hyperparameters.learning_rate

    assert rate() == 1e-4  # the demo's full fine-tuning rate
    assert rate("method=full") == 1e-4  # its own method: the preset's rate stays
    assert rate("method=lora") == rate("method=dora") == 2e-3  # LoRA's, from the demo sweep
    assert rate("method=ia3") == 3e-3 and rate("method=prefix") == 1e-2
    assert rate("method=lora", "learning_rate=5e-4") == 5e-4

    def sql(*overrides: str) -> float:
        return resolve_request(RunRequest(preset="sql", overrides=overrides)).spec.hyperparameters.learning_rate

    assert sql("method=dora") == sql() == 2e-4  # between lora and dora the preset's rate stays
    assert sql("method=full") == 5e-5
