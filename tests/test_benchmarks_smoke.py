"""The benchmark scripts still run against the code they measure: each answers --help, and the
training benchmark reads its settings from the demo preset as the runner would. (They are
measurements, not tests; this only catches a script left behind by a change of API.)"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", ["train_throughput.py", "eval_throughput.py", "tui_latency.py"])
def test_each_benchmark_answers_help(script):
    res = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--quick" in res.stdout


def test_the_training_benchmark_takes_the_demo_presets_local_settings():
    spec = importlib.util.spec_from_file_location("train_throughput", BENCHMARKS / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    args = argparse.Namespace(batch_size=None, max_length=None, seq_len=1024)
    from ftui.core.presets import load_preset

    local = load_preset("demo").settings_for("local")
    assert module.run_settings(args, "smollm2-135m", "demo", 8) == {
        "batch_size": local.batch_size, "max_length": local.max_length, "learning_rate": local.learning_rate}
