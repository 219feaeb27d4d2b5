"""The benchmark scripts still run against the code they measure: each answers --help, the
training benchmark reads its settings from the demo preset as the runner would and sets its
FLOPs rate against the GEMM ceiling it measures, and the GPU check runs its own code on a tiny
model on the CPU. (They are measurements, not tests; this
only catches a script left behind by a change of API, and a JSON line that lost its keys.)"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", ["train_throughput.py", "eval_throughput.py", "tui_latency.py",
                                    "playground_latency.py", "memory.py"])
def test_each_benchmark_answers_help(script):
    res = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--quick" in res.stdout


def benchmark_module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_the_training_benchmark_takes_the_demo_presets_shape_and_trains_lora_on_both_sides():
    module = benchmark_module("train_throughput")
    args = argparse.Namespace(batch_size=None, max_length=None, seq_len=1024)
    from ftui.core.config import METHOD_LEARNING_RATES
    from ftui.core.presets import load_preset

    local = load_preset("demo").settings_for("local")
    assert local.method == "full"  # the preset's own method; the benchmark compares LoRA with LoRA
    assert module.run_settings(args, "smollm2-135m", "demo", 8) == {
        "batch_size": local.batch_size, "max_length": local.max_length,
        "learning_rate": METHOD_LEARNING_RATES["lora"]}
    assert "method=lora" in module.LORA_SETTINGS
    assert [s.split("=")[0] for s in module.LORA_SETTINGS] == [
        "method", "lora_r", "lora_alpha", "lora_dropout", "target_modules"]


def test_the_gemm_ceiling_times_every_linear_shape_of_the_model_and_weighs_them_by_count(tmp_path):
    training = benchmark_module("_training")
    config = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 256}
    shapes = training.linear_shapes(config)
    assert shapes == [("q_proj", 64, 64, 3), ("k_proj", 64, 32, 3), ("v_proj", 64, 32, 3), ("o_proj", 64, 64, 3),
                      ("gate_proj", 64, 128, 3), ("up_proj", 64, 128, 3), ("down_proj", 128, 64, 3),
                      ("lm_head", 64, 256, 1)]
    ceiling = training.gemm_ceiling(config, tokens=16, reps=1)
    assert ceiling["tflops_per_s"] > 0 and ceiling["tokens"] == 16 and ceiling["threads"] >= 1
    assert [tuple(s) for s in ceiling["shapes"]] == shapes


def test_the_training_benchmark_sets_the_model_flops_rate_against_the_gemm_ceiling(capsys):
    module = benchmark_module("train_throughput")

    def side(tokens: int, seconds: float) -> dict:
        return {"tokens": tokens, "seconds": seconds, "cpu_seconds": 2 * seconds, "model_flops": tokens * 6e8,
                "padded_tokens": tokens + 50, "steps": 6, "peak_memory_bytes": 2**30, "precision": "bfloat16"}

    results = {"ours": [side(6000, 20.0)], "baseline": [side(6000, 60.0)]}
    figures = module.summarize(results, peak=None, gemm={"tflops_per_s": 0.4, "tokens": 1008, "threads": 2})
    assert figures["ours_model_tflops_per_s"] == 0.18 and figures["baseline_model_tflops_per_s"] == 0.06
    assert figures["gemm_ceiling_tflops_per_s"] == 0.4 and figures["gemm_tokens"] == 1008
    assert figures["gemm_fraction"] == figures["ours_gemm_fraction"] == 0.45
    assert figures["baseline_gemm_fraction"] == 0.15 and figures["ratio"] == 3.0
    figures.update(benchmark="train_throughput", device="cpu", gpu=None, arch="smollm2-135m", data="demo",
                   batch_size=8, max_length=256, steps=6, warmup=1, rounds=1, peak_tflops=None,
                   machine={"cpu": "a CPU", "cpu_count": 2})
    module.report(figures)
    out = capsys.readouterr().out
    assert "of GEMM ceiling" in out and "45.0%" in out and "15.0%" in out
    assert "bf16 GEMM ceiling (1008 rows, 2 threads)" in out and "gemm_fraction" in out


FIGURES = {"tokens_per_s", "mfu", "model_tflops_per_s", "peak_memory_bytes", "s_per_step", "tokens",
           "trainable_params", "precision", "skipped", "error"}


def gpu_check(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    """benchmarks/gpu_check.sh ARGS as a user runs it; the process and its last line's JSON."""
    res = subprocess.run([str(BENCHMARKS / "gpu_check.sh"), *args], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, env={**os.environ, "PYTHON": sys.executable}, timeout=timeout)
    lines = res.stdout.strip().splitlines()
    assert lines, res.stderr[-3000:]
    return res, json.loads(lines[-1])


def test_the_gpu_check_runs_its_code_on_a_tiny_llama_on_the_cpu():
    res, line = gpu_check("--cpu-smoke", timeout=280)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert (line["benchmark"], line["mode"], line["device"]) == ("gpu_check", "cpu-smoke", "cpu")
    configs = line["configs"]
    assert set(configs) == {"lora_bf16", "qlora_4bit", "full"}
    for name, figures in (*configs.items(), ("trl_lora", line["trl_lora"])):
        assert FIGURES <= set(figures), name
    for name in ("lora_bf16", "full"):
        figures = configs[name]
        assert figures["error"] is None and figures["skipped"] is None, figures
        assert figures["tokens_per_s"] > 0 and figures["peak_memory_bytes"] > 0 and figures["model_tflops_per_s"] > 0
        assert figures["mfu"] is None  # no bf16 peak for a CPU
    # Each trained by its method: full every weight, LoRA its adapter alone.
    assert configs["full"]["trainable_params"] == line["model"]["params"]
    assert 0 < configs["lora_bf16"]["trainable_params"] < line["model"]["params"] / 100
    qlora = configs["qlora_4bit"]
    assert qlora["tokens_per_s"] is None and "CUDA" in qlora["skipped"]
    if importlib.util.find_spec("trl") is not None:
        assert line["trl_lora"]["tokens_per_s"] > 0 and line["ratio"] > 0
    else:
        assert line["ratio"] is None and "trl is not installed" in line["ratio_reason"]
    assert {"peak_tflops", "peak_tflops_source", "flops_per_token", "versions", "wall_s"} <= set(line)


def test_the_gpu_check_reports_what_did_not_fit_its_time_budget_as_nulls_with_the_reason():
    res, line = gpu_check("--cpu-smoke", "--budget-s", "1", timeout=120)
    assert res.returncode == 1
    assert "did not finish within" in line["model_error"]
    for figures in (*line["configs"].values(), line["trl_lora"]):
        assert figures["tokens_per_s"] is None and figures["skipped"]
    assert line["ratio"] is None and line["ratio_reason"]


def test_the_memory_benchmark_measures_growth_after_warm_up_from_each_steps_peak():
    memory = benchmark_module("memory")
    mib = 2**20
    # Per step: resident set, peak during the step, heap in use, free, mapped. Two warm-up steps
    # (loading, the first large batches), then step peaks that grow 10 MiB a step from 1,000 MiB.
    marks = [[900 * mib, 1500 * mib, 1, 2, 3], [950 * mib, 1200 * mib, 1, 2, 3]]
    marks += [[800 * mib, (1000 + 10 * i) * mib, 4, 5 * i, 6] for i in range(10)]
    result = {"memory": marks, "before_peak_rss": 1100 * mib, "tokens": 1000, "seconds": 10.0, "steps": 10}
    f = memory.summarize(result, warmup=2)
    assert f["peak_rss_bytes"] == 1500 * mib and f["final_rss_bytes"] == 800 * mib
    assert f["warm_rss_bytes"] == 950 * mib
    # The most of steps 7-11 (1,090) less the most of steps 2-6 (1,040), over 5 steps.
    assert f["peak_growth_per_100_steps_bytes"] == 1000 * mib and f["rss_growth_per_100_steps_bytes"] == 0
    assert f["growth_per_100_steps_bytes"] == 1000 * mib and f["growth_share"] == pytest.approx(1000 / 1500, abs=1e-4)
    assert not f["flat"]
    assert f["heap_free_bytes"] == 45 and f["heap_free_after_warmup_bytes"] == 2
    assert memory.summarize({"error": "boom"}, warmup=2) == {"error": "boom"}
    assert memory.slope([5.0, 5.0, 5.0]) == 0 and memory.slope([1.0, 3.0, 5.0]) == pytest.approx(2.0)
    # A resident set that climbs between steps counts though the peaks do not.
    marks = [[(1000 + 20 * i) * mib, 2000 * mib, None, None, None] for i in range(12)]
    f = memory.summarize({**result, "memory": marks}, warmup=2)
    assert f["rss_growth_per_100_steps_bytes"] == 2000 * mib and f["peak_growth_per_100_steps_bytes"] == 0
    assert f["growth_per_100_steps_bytes"] == 2000 * mib and f["heap_free_bytes"] is None
