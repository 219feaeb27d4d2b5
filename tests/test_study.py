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
    with pytest.raises(StudyStartError, match="unknown method 'lorax'"):  # the form's methods reach the CLI
        start_study(preset="demo", backends=["local"], methods=["lora", "lorax"])
    assert not studies_dir().is_dir() or not list(studies_dir().iterdir())


def test_two_drivers_of_one_study_launch_each_run_once(monkeypatch):
    import ftui.runner.study_driver as studies

    runs = [create_run(label="demo", spec={"backend": "local", "model": m}, splits={}) for m in ("a", "b")]
    study = create_study(preset="demo", label="demo", runs=runs)
    launched = []

    def slow_launch(run, **_):  # as a real launch: the runner's pid is in status.json only some time later
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


# -- a study of training methods (#15) -----------------------------------------------------------

T0 = 1795000000.0


def _method_run(method: str, *, lr: float, trainable: int, total: int, hw: list[dict], rates: list[float],
                saved: str, weights_bytes: int, metrics: dict[str, dict[str, float]]):
    """A finished local run as the runner leaves it: status and train/hw events, the saved
    weights (``adapter/`` or ``model/``) and the variants' metrics."""
    from ftui.core.events import EventWriter

    run = create_run(label=f"sql-{method}", spec={
        "backend": "local", "model": "smollm2-135m", "task": "sql",
        "hyperparameters": {"method": method, "learning_rate": lr}}, splits={})
    with EventWriter(run.events_path) as w:
        w.write("status", ts=T0, state="running")
        for i, r in enumerate(rates, 1):
            w.write("train", ts=T0 + 10 * i, step=i, total_steps=len(rates), epoch=i / len(rates), loss=1.0,
                    lr=lr, tokens=1000 * i, tokens_per_s=r)
        for i, fields in enumerate(hw, 1):
            w.write("hw", ts=T0 + 10 * i, cpu_percent=100.0, **fields,
                    **({"method": method, "trainable_params": trainable, "total_params": total} if trainable else {}))
        w.write("status", ts=T0 + 75, state="evaluating")
        w.write("status", ts=T0 + 90, state="succeeded")
    run.write_status("succeeded")
    folder = run.dir / saved
    folder.mkdir()
    (folder / ("adapter_config.json" if saved == "adapter" else "config.json")).write_text("{}")
    (folder / "weights.safetensors").write_bytes(b"\0" * (weights_bytes - 2))
    for variant, values in metrics.items():
        (run.dir / "eval" / variant).mkdir(parents=True)
        (run.dir / "eval" / variant / "metrics.json").write_text(json.dumps(
            {"variant": variant, "n": 40, "duration_s": 4.0, "metrics": values}))
    return run


SQL_BASE = {"valid": 0.5, "exact": 0.0, "execution": 0.1, "execution_strict": 0.05}


def method_runs():
    """lora (evaluates base and k-shot), ia3 (a resumed run that evaluated base again), full."""
    MiB = 2**20
    return [
        _method_run("lora", lr=2e-4, trainable=921_600, total=135_436_608,
                    hw=[{"rss_bytes": 900 * MiB, "peak_mem_bytes": 950 * MiB},
                        {"rss_bytes": 980 * MiB, "peak_mem_bytes": 1100 * MiB}],
                    rates=[1000.0, 1200.0, 1400.0], saved="adapter", weights_bytes=3 * MiB,
                    metrics={"base": SQL_BASE, "kshot": {**SQL_BASE, "execution": 0.3},
                             "finetuned": {"valid": 0.9, "exact": 0.4, "execution": 0.6, "execution_strict": 0.5}}),
        _method_run("ia3", lr=3e-3, trainable=23_040, total=134_538_048,
                    hw=[{"rss_bytes": 700 * MiB}, {"rss_bytes": 800 * MiB}, {"rss_bytes": 750 * MiB}],
                    rates=[1500.0, 1700.0], saved="adapter", weights_bytes=96 * 2**10,
                    metrics={"base": {**SQL_BASE, "valid": 0.9},
                             "finetuned": {"valid": 0.8, "exact": 0.2, "execution": 0.35, "execution_strict": 0.3}}),
        _method_run("full", lr=5e-5, trainable=134_515_008, total=134_515_008,
                    hw=[{"rss_bytes": 2 * 2**30, "peak_mem_bytes": int(2.5 * 2**30)}],
                    rates=[600.0, 700.0], saved="model", weights_bytes=257 * MiB,
                    metrics={"finetuned": {"valid": 0.95, "exact": 0.5, "execution": 0.7, "execution_strict": 0.6}}),
    ]


def test_a_study_of_methods_tables_what_each_training_took():
    from ftui.core.study import by_method, render_csv, render_markdown, render_text, table

    data = table(method_runs())
    assert data["methods"] == ["lora", "ia3", "full"] and by_method(data)
    rows = data["rows"]
    # base and k-shot once: the resumed ia3 run's second base row is left out
    assert [(r["variant"], r["method"]) for r in rows] == [
        ("base", None), ("kshot", None), ("finetuned", "lora"), ("finetuned", "ia3"), ("finetuned", "full")]
    assert rows[0]["metrics"]["valid"] == 0.5
    lora, ia3, full = rows[2:]
    assert (lora["trainable_params"], lora["total_params"]) == (921_600, 135_436_608)
    assert lora["trainable_pct"] == pytest.approx(0.6805, abs=1e-4) and full["trainable_pct"] == 100.0
    assert lora["peak_mem_bytes"] == 1100 * 2**20  # the last hw event's peak
    assert ia3["peak_mem_bytes"] == 800 * 2**20  # no peak recorded: the largest resident size
    assert (lora["tokens_per_s"], ia3["tokens_per_s"]) == (1200.0, 1600.0)  # mean over training
    assert (lora["saved_bytes"], full["saved_bytes"]) == (3 * 2**20, 257 * 2**20)
    assert lora["training_s"] == 75.0 and (lora["learning_rate"], full["learning_rate"]) == (2e-4, 5e-5)
    assert full["most_accurate"] and not lora["most_accurate"]
    assert all(rows[i][k] is None for i in (0, 1) for k in ("method", "trainable_params", "saved_bytes"))

    text = render_text(data)
    lines = text.splitlines()
    assert lines[0] == "backend: local  model: smollm2-135m  train $: $0.0000  eval $/1k: $0.0000"
    assert max(map(len, lines)) <= 80, text
    assert [line.split()[0] for line in lines[1:7]] == ["variant", "base", "kshot", "lora", "ia3", "full"]
    head = lines.index(next(line for line in lines if line.startswith("method")))
    assert lines[head].split() == ["method", "trainable", "peak", "mem", "tok/s", "train", "saved", "lr", "execution"]
    assert lines[head + 1].split() == ["lora", "922K", "(0.68%)", "1.1", "GiB", "1,200", "1m15s", "3.0", "MiB",
                                       "2e-4", "60.0%"]
    assert lines[head + 2].split()[:3] == ["ia3", "23K", "(0.02%)"] and "96.0 KiB" in lines[head + 2]
    assert lines[head + 3].split()[:7] == ["full", "135M", "(100.00%)", "2.5", "GiB", "650", "1m15s"]
    assert "257 MiB" in lines[head + 3]

    md = render_markdown(data)
    assert "| backend | model | variant | method | n | valid | exact | execution | execution_strict | " \
           "trainable parameters | peak memory | tokens/s | training time | saved | learning rate |" in md
    assert "| local | `smollm2-135m` | finetuned | lora | 40 | 90.0% | 40.0% | 60.0% | 50.0% | 922K (0.68%) | " \
           "1.1 GiB | 1,200 | 1m15s | 3.0 MiB | 2e-4 |" in md
    with_csv = list(csv.DictReader(io.StringIO(render_csv(data))))
    assert [r["method"] for r in with_csv] == ["", "", "lora", "ia3", "full"]
    assert with_csv[3]["trainable_params"] == "23040" and with_csv[4]["saved_bytes"] == str(257 * 2**20)


def test_a_study_of_one_method_keeps_its_table():
    from ftui.core.study import render_markdown, render_text, table

    data = table(method_runs()[:1])
    assert data["methods"] == ["lora"]
    assert "trainable" not in render_text(data) and "trainable" not in render_markdown(data)
    assert "finetuned" in render_text(data)  # named by variant, as before
    assert data["rows"][2]["trainable_params"] == 921_600  # the JSON has it all the same


def test_methods_make_one_local_run_each_on_one_split_and_combine_with_backends(monkeypatch):
    import dataclasses

    import ftui.runner.study_driver as studies

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # its pre-flight passes; nothing is sent
    err = io.StringIO()
    study = studies.start_study(preset="demo", data=None, task=None, backends=["local", "openai"], models=[],
                                overrides=["local.max_steps=2", "local.lora_r=4"], confirm=lambda q: False,
                                err=err, methods=["lora", "ia3", "lora"])
    assert "--methods lora,ia3 applies to local runs; openai fine-tunes its own way: one run" in err.getvalue()
    members = study.members()
    assert [(m.backend, m.method, m.variants) for m in members] == [
        ("local", "lora", ()), ("local", "ia3", ("finetuned",)), ("openai", None, ())]
    lora, ia3, openai = study.runs()
    assert "-lora-" in lora.id and "-ia3-" in ia3.id
    assert (lora.spec.setting("method"), ia3.spec.setting("method")) == ("lora", "ia3")

    def rest(run):  # every setting but the method and the rate it may bring (config.METHODS)
        return {k: v for k, v in dataclasses.asdict(run.spec.hyperparameters).items()
                if k not in ("method", "learning_rate")}

    assert rest(lora) == rest(ia3) and rest(lora)["max_steps"] == 2 and rest(lora)["lora_r"] == 4
    assert lora.spec.split == ia3.spec.split == openai.spec.split
    for split in ("train", "val", "test"):
        assert (lora.dir / "data" / f"{split}.jsonl").read_bytes() == (ia3.dir / "data" / f"{split}.jsonl").read_bytes()
    launched = []

    def launch(run, *, variants=()):
        launched.append((run.id, tuple(variants)))
        run.write_status("succeeded")
        return os.getpid()

    monkeypatch.setattr(studies, "launch", launch)
    studies.run_study(study, out=io.StringIO(), poll_s=0.01)
    # OpenAI at once; base and k-shot in the first local run only
    assert launched == [(openai.id, ()), (lora.id, ()), (ia3.id, ("finetuned",))]


def test_bad_methods_exit_2_before_any_run_or_study():
    for args, words in [
        (["--methods", "lora,lorax"], "unknown method 'lorax' for local; choose from lora ("),
        (["--methods", "ia3,lora", "--set", "quantization=4bit"],
         "local.method: method=ia3 does not train on a quantized base (quantization=4bit)"),
        (["--methods", "full,dora", "--set", "local.quantization=8bit"],
         "local.method: method=full does not train on a quantized base (quantization=8bit)"),
        # (lora with 4-bit goes with the method; this machine has no CUDA GPU for it)
        (["--methods", "lora,dora", "--set", "quantization=4bit"], "quantization=4bit needs a CUDA GPU"),
        (["--backends", "openai", "--methods", "lora"], "openai fine-tunes one way; methods are for local runs"),
        (["--methods", "lora,dora", "--set", "local.method=ia3"], "--methods and --set method=... both choose"),
    ]:
        res = run_cli("study", "--preset", "demo", *args)
        assert res.returncode == 2 and words in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr
    assert json.loads(run_cli("runs", "--json").stdout) == []
    assert not studies_dir().is_dir() or not list(studies_dir().iterdir())


def test_a_study_of_two_methods_trains_each_and_tables_them(tmp_path, tiny_model):
    res = run_cli("study", "--data", str(toy_data(tmp_path)), "--task", "text", "--backends", "local",
                  "--models", str(tiny_model), "--methods", "lora,ia3", *LOCAL, "--set", "max_steps=2", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert set(out["states"].values()) == {"succeeded"} and out["methods"] == ["lora", "ia3"]
    rows = out["rows"]
    assert [(r["variant"], r["method"]) for r in rows] == [
        ("base", None), ("kshot", None), ("finetuned", "lora"), ("finetuned", "ia3")]
    lora, ia3 = rows[2:]
    assert 0 < ia3["trainable_params"] < lora["trainable_params"] < lora["total_params"]
    for row in (lora, ia3):
        assert row["peak_mem_bytes"] > 0 and row["tokens_per_s"] > 0 and row["saved_bytes"] > 0
        assert row["training_s"] > 0 and row["learning_rate"] == 0.02  # given: the same for both
    runs = {r["id"]: Path(out["dir"]).parent.parent / "runs" / r["id"] for r in json.loads(
        (Path(out["dir"]) / "study.json").read_text())["runs"]}
    lora_dir, ia3_dir = (runs[lora["run"]], runs[ia3["run"]])
    assert sorted(p.name for p in (ia3_dir / "eval").iterdir()) == ["finetuned"]  # base and k-shot once
    assert sorted(p.name for p in (lora_dir / "eval").iterdir()) == ["base", "finetuned", "kshot"]
    for d in (lora_dir, ia3_dir):
        assert json.loads((d / "run.json").read_text())["hyperparameters"]["max_steps"] == 2
    text = run_cli("study", out["id"]).stdout
    assert "method  trainable" in text and "\nia3 " in text


def test_base_and_kshot_are_evaluated_alone_when_the_run_meant_to_evaluate_them_failed(monkeypatch):
    import ftui.runner.study_driver as studies

    runs = [create_run(label=f"demo-{m}", spec={"backend": "local", "model": "m", "hyperparameters": {"method": m}},
                       splits={}) for m in ("full", "lora")]
    study = create_study(preset="demo", label="demo", runs=runs, variants={runs[1].id: ["finetuned"]})
    launched = []

    def launch(run, *, variants=(), eval_only=False):
        launched.append((run.id, tuple(variants), eval_only))
        fails = run.id == runs[0].id and not eval_only  # full fine-tuning fails, say out of memory
        run.write_status("failed" if fails else "succeeded")
        return os.getpid()

    monkeypatch.setattr(studies, "launch", launch)
    log = io.StringIO()
    studies.run_study(study, out=log, poll_s=0.01)
    assert launched == [(runs[0].id, (), False), (runs[1].id, ("finetuned",), False),
                        (runs[0].id, ("base", "kshot"), True)]
    assert f"evaluating base, kshot on {runs[0].id}" in log.getvalue()
