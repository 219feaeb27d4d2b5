from __future__ import annotations

import csv
import json
import re

from ftui.core.events import EventWriter
from ftui.core.examples import Example
from ftui.core.export import export
from ftui.core.runs import Run, create_run
from ftui.core.scoring import score_examples, write_eval
from ftui.core.tasks import make_task

from conftest import run_cli


def finished_run():
    test = [Example(fields={"input": f"say {w}"}, reference=w, line=i + 1) for i, w in enumerate(["a", "b", "c", "d"])]
    run = create_run(label="text", spec={"preset": None, "task": "text", "backend": "local", "model": "tiny",
                                         "hyperparameters": {"lora_r": 8, "learning_rate": 2e-4},
                                         "data": {"source": "mine.jsonl", "sha256": "ab" * 32}},
                     splits={"train": test, "val": test[:1], "test": test})
    with EventWriter(run.events_path) as w:
        w.write("status", state="running")
        for step in range(1, 6):
            w.write("train", step=step, total_steps=5, epoch=step / 5, loss=3.0 / step, lr=2e-4,
                    tokens=100 * step, tokens_per_s=250.0)
        w.write("val", step=5, loss=0.9)
        w.write("cost", usd=0.0123, projected_usd=0.0123, basis="1.0 h x $0.475/h (A40)")
        w.write("status", state="succeeded")
    task = make_task("text")
    for variant, outs in (("base", ["x", "b", "y", "z"]), ("finetuned", ["a", "b", "c", "q"])):
        records, metrics = score_examples(task, test, outs)
        write_eval(run.dir, variant, records, metrics, model="tiny")
    run.write_status("succeeded", ended=run.spec.created + 75)
    return run


def test_export_writes_markdown_json_csv_and_plot(tmp_path):
    run = finished_run()
    written = export(run, out=tmp_path / "share")
    names = sorted(p.name for p in written)
    assert names == ["loss.png", "predictions.csv", "summary.json", "summary.md"]
    md = (tmp_path / "share" / "summary.md").read_text()
    assert "| variant | n | exact | normalized |" in md  # text without valid_regex: no validity rule
    assert "| base | 4 | 25.0% | 25.0% |" in md
    assert "| finetuned | 4 | 75.0% (+50.0) | 75.0% (+50.0) |" in md
    assert "$0.0123" in md and "![training and validation loss](loss.png)" in md
    # working time (the runner wrote its events within a second), then the clock from creation to the end
    assert re.search(r"- time: training 0m 0\ds \(working time; 1m 15s from creation to the end, pauses included\)", md)
    assert "Source: `mine.jsonl` (sha256 `abababababab`)" in md
    assert "## Evaluation settings\n\n| setting | value |\n|---|---|\n| max_new_tokens | 128 |\n| k | 3 |\n" \
           "| limit | 0 (all test examples) |\n| batch_size | 32 |\n" in md
    assert (tmp_path / "share" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "share" / "summary.json").read_text())
    assert data["eval"]["finetuned"]["metrics"]["exact"] == 0.75
    assert data["training"]["final_loss"] == 0.6 and data["loss"]["val"] == [[5, 0.9]]
    # data is one level: the source's facts beside the split (#18: it nested data.data)
    assert data["data"]["source"] == "mine.jsonl" and data["data"]["sha256"] == "ab" * 32
    assert data["data"]["split_sizes"] == {"train": 4, "val": 1, "test": 4} and "data" not in data["data"]
    assert data["eval_settings"] == {"max_new_tokens": 128, "k": 3, "limit": 0, "batch_size": 32}
    assert data["time"]["duration_s"] == 75.0 and data["time"]["eval_s"] == 0.0 and data["time"]["train_s"] < 5
    rows = list(csv.DictReader(open(tmp_path / "share" / "predictions.csv", encoding="utf-8")))
    assert len(rows) == 8 and {r["variant"] for r in rows} == {"base", "finetuned"}
    assert rows[0]["output"] == "x" and rows[0]["exact"] == "False"


def test_export_cli_single_format_and_show(tmp_path):
    run = finished_run()
    out = tmp_path / "s.json"
    res = run_cli("export", run.id[:-2], "--format", "json", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())["id"] == run.id
    show = json.loads(run_cli("show", "latest", "--json").stdout)
    assert show["status"] == "succeeded" and show["eval"]["base"]["exact"] == 0.25
    assert show["duration_s"] == 75.0 and show["cost_usd"] == 0.0123
    listed = json.loads(run_cli("runs", "--json").stdout)
    assert [r["id"] for r in listed] == [run.id]
    missing = run_cli("export", "nope")
    assert missing.returncode == 2 and "no run matches 'nope'" in missing.stderr


def test_export_of_an_sql_run_counts_unscorable_references_apart(tmp_path):
    context = "CREATE TABLE singer (name VARCHAR, age INTEGER)"
    golds = ["SELECT name FROM singer WHERE age > 30", "SELECT COUNT(*) FROM singer",
             "SELECT name FROM singer WHERE country = 'France'"]  # no such column: unscorable
    test = [Example(fields={"question": f"q{i}", "context": context}, reference=g, line=i + 1)
            for i, g in enumerate(golds)]
    run = create_run(label="sql", spec={"preset": None, "task": "sql", "backend": "local", "model": "tiny"},
                     splits={"train": test, "val": test[:1], "test": test})
    records, metrics = score_examples(make_task("sql"), test, [golds[0], "SELECT 1", "SELECT name FROM singer"])
    write_eval(run.dir, "finetuned", records, metrics)
    assert json.loads((run.dir / "eval" / "finetuned" / "metrics.json").read_text())["n_scorable"] == 2
    export(run, out=tmp_path / "share")
    md = (tmp_path / "share" / "summary.md").read_text()
    assert "| variant | n | valid | exact | execution | execution_strict |" in md
    assert "| finetuned | 3 (2 scorable) | 100.0% | 50.0% | 50.0% | 50.0% |" in md
    assert "reference cannot run on its context are not scored" in md
    data = json.loads((tmp_path / "share" / "summary.json").read_text())
    assert data["eval"]["finetuned"]["n_scorable"] == 2


def stopped_early_gpu_run():
    """A full fine-tuning on one A40 that early stopping ended at step 30 of 50, keeping step 10."""
    test = [Example(fields={"input": f"say {w}"}, reference=w, line=i + 1) for i, w in enumerate(["a", "b"])]
    run = create_run(label="text", spec={"preset": None, "task": "text", "backend": "local", "model": "tiny",
                                         "hyperparameters": {"method": "full", "early_stop_patience": 2,
                                                             "keep_best": True}},
                     splits={"train": test, "val": test, "test": test})
    with EventWriter(run.events_path) as w:
        w.write("status", state="running")
        # 1e9 parameters, all training: 6e9 FLOPs a token; 4,990 tok/s of the A40's 149.7 TFLOP/s = 20.0%
        w.write("hw", gpu_name="NVIDIA A40", method="full", total_params=10**9, trainable_params=10**9,
                peak_mem_bytes=3 * 2**30, peak_rss=int(1.5 * 2**30), processes=1)
        for step in range(1, 31):
            w.write("train", step=step, total_steps=50, epoch=step / 50, loss=3.0 / step, lr=5e-5,
                    tokens=100 * step, tokens_per_s=4990.0)
            if step % 10 == 0:
                w.write("val", step=step, loss=1.21 + step / 1000, best_step=10, best_loss=1.22,
                        since_best=step // 10 - 1, rows=2)
        w.write("status", state="succeeded")
    run.adapter_path.mkdir()  # the kept step's weights are the result
    (run.adapter_path / "adapter_config.json").write_text("{}")
    return run


def test_summary_says_the_mfu_the_peak_rss_the_early_stop_and_the_kept_step(tmp_path):
    run = stopped_early_gpu_run()
    export(run, out=tmp_path / "share")
    md = (tmp_path / "share" / "summary.md").read_text()
    assert "tokens/s: 4990, MFU 20.0% of NVIDIA A40's bf16 peak" in md, md
    assert "- peak RSS: 1.50 GiB (the training process's resident memory)" in md
    assert ("- validation: stopped early at step 30: validation loss not improved for 2 passes; "
            "kept step 10 (val 1.2200)") in md, md
    data = json.loads((tmp_path / "share" / "summary.json").read_text())
    tr = data["training"]
    assert (tr["mfu"], tr["gpu_name"], tr["peak_rss"]) == (0.2, "NVIDIA A40", int(1.5 * 2**30))
    assert (tr["stopped_early_at"], tr["kept_step"], tr["best_val_loss"]) == (30, 10, 1.22)
    # a run on a CPU that trained to its end: none of these lines
    md = (export(finished_run(), fmt="md", out=tmp_path / "cpu.md")[-1]).read_text()
    assert "MFU" not in md and "peak RSS" not in md and "- validation:" not in md


def test_an_older_runs_summary_and_show_leave_out_the_settings_it_never_had(tmp_path):
    """A run.json from before val_rows, keep_best, early stopping, the schedule and devices:
    neither the summary nor ``ftui show`` prints today's defaults for them as the run's."""
    run = finished_run()
    spec = json.loads((run.dir / "run.json").read_text())
    newer = ("val_rows", "keep_best", "early_stop_patience", "lr_scheduler", "warmup_steps", "devices")
    assert all(k in spec["hyperparameters"] for k in newer)  # a run made now records every setting
    spec["hyperparameters"] = {k: v for k, v in spec["hyperparameters"].items() if k not in newer}
    (run.dir / "run.json").write_text(json.dumps(spec))
    run = Run(run.dir)  # read afresh
    assert set(newer) <= set(run.spec.unrecorded_settings) and "lora_r" not in run.spec.unrecorded_settings
    export(run, out=tmp_path / "share")
    data = json.loads((tmp_path / "share" / "summary.json").read_text())
    assert not set(newer) & set(data["hyperparameters"]) and data["hyperparameters"]["lora_r"] == 8
    md = (tmp_path / "share" / "summary.md").read_text()
    assert "| val_rows |" not in md and "| keep_best |" not in md and "| lora_r | 8 |" in md
    assert "Not set (older run, made before these settings existed): `lr_scheduler`, `warmup_steps`" in md, md
    shown = run_cli("show", run.id).stdout
    settings = next(line for line in shown.splitlines() if line.startswith("settings "))
    assert "lora_r=8" in settings and "val_rows" not in settings and "keep_best" not in settings
    assert "             not set (older run): lr_scheduler, warmup_steps, val_rows, early_stop_patience, " \
           "keep_best, devices\n" in shown, shown
