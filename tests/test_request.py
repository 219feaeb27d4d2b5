from __future__ import annotations

import json

import pytest

from ftui.core.cost import hardware_price, spent_and_projected
from ftui.core.errors import ConfigError
from ftui.core.events import EventWriter, read_events
from ftui.core.runspec import RunSpec
from ftui.core.request import RunRequest, prepare_run
from ftui.core.events import drop_events_after

from conftest import run_cli


def test_prepare_run_freezes_preset_settings_and_overrides():
    run = prepare_run(RunRequest(preset="demo", epochs=2, overrides=["method=lora", "lora_r=4", "target_modules=q_proj,v_proj",
                                                                    "eval.k=1", "split.test=10"]))
    spec = json.loads((run.dir / "run.json").read_text())  # the documented contract, on disk
    assert list(spec) == ["id", "ftui_version", "created", "preset", "task", "task_options", "prompt", "data",
                          "split", "backend", "model", "hyperparameters", "eval", "report", "split_sizes"]
    assert spec["task"] == "sql" and spec["backend"] == "local" and spec["model"] == "smollm2-135m"
    hp = spec["hyperparameters"]
    assert hp["epochs"] == 2 and hp["lora_r"] == 4 and hp["target_modules"] == ["q_proj", "v_proj"]
    assert spec["eval"]["k"] == 1 and spec["split_sizes"] == {"train": 1290, "val": 40, "test": 10}
    assert len(spec["data"]["sha256"]) == 64 and spec["data"]["used"] == 1340
    assert len(run.examples("test")) == 10
    assert "api_key" not in json.dumps(spec).lower()
    # read back once into the same types it was written from
    typed = run.spec
    assert typed.hyperparameters.target_modules == ("q_proj", "v_proj") and typed.hyperparameters.epochs == 2
    assert typed.eval.k == 1 and typed.split.test == 10 and typed.prompt.user.startswith("Tables:")
    assert typed.to_json() == spec and RunSpec.from_json(spec) == typed


@pytest.mark.parametrize("override,message", [
    ("lora_r", "expected KEY=VALUE"),
    ("lora_rank=4", "unknown setting; known:"),
    ("lora_r=four", "expected a number"),
    ("lora_r=0", "lora_r: must be a whole number >= 1"),
    ("quantization=3bit", "must be none, 4bit or 8bit"),
])
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        prepare_run(RunRequest(preset="demo", overrides=[override]))


def test_a_sections_set_items_are_checked_together_whatever_their_order():
    from ftui.core.config import LocalSettings
    from ftui.core.request import apply_overrides

    full = {"local": LocalSettings(method="full", learning_rate=1e-4)}  # as the demo preset trains
    for items in (["quantization=4bit", "method=lora"], ["method=lora", "quantization=4bit"]):
        local = apply_overrides(full, items, "local")["local"]
        assert (local.method, local.quantization, local.learning_rate) == ("lora", "4bit", 2e-3)
    with pytest.raises(ConfigError, match=r"^--set quantization=4bit: local.method: method=full does not train"):
        apply_overrides(full, ["quantization=4bit", "lora_r=4"], "local")  # the item refused alone is named


def test_train_cli_refuses_bad_input_before_creating_a_run(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "output": ""}\n')
    res = run_cli("train", "--data", str(bad), "--task", "text")
    assert res.returncode == 2 and "empty reference" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("train", "--preset", "demo", "--set", "lora_r=x")
    assert res.returncode == 2 and "--set lora_r" in res.stderr
    assert json.loads(run_cli("runs", "--json").stdout) == []


def test_price_table_and_projection():
    assert hardware_price(None).per_hour == 0.0
    a40 = hardware_price("NVIDIA A40")
    assert a40.per_hour == 0.475 and "2026-11" in a40.basis
    assert hardware_price("NVIDIA H100 80GB HBM3", 2.5).per_hour == 2.5
    spent, projected = spent_and_projected(a40, 3600, 25, 100)
    assert spent == pytest.approx(0.475) and projected == pytest.approx(1.9)


def test_drop_events_after_keeps_every_step_once(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        for step in range(1, 8):
            w.write("train", step=step, total_steps=10, epoch=0.1, loss=1.0, lr=0.1, tokens=step, tokens_per_s=1.0)
            if step % 3 == 0:
                w.write("checkpoint", step=step, path=f"checkpoints/step-{step}")
        w.write("val", step=7, loss=1.0)
    assert drop_events_after(path, 6) == 2
    events = read_events(path)
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [3, 6]
