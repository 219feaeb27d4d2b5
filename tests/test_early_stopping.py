"""Early stopping, the best validation pass's weights as the result, and the learning-rate
schedule, on the tiny model through the real runner; bad settings refused by the CLI."""

from __future__ import annotations

import json
import math

import pytest

from ftui.core.events import read_events
from ftui.core.runs import Run

from conftest import run_cli
from test_runner import start, toy_data, train_steps, wait_for
from test_tui import RUN_A, T0, ev, fake_services, make_run, rewrite_spec, screen_text, wait_until, write_events

FLAT = ["--max-steps", "12", "--set", "eval_every=1", "--set", "early_stop_patience=2",
        # A rate too small to move any output: the validation loss stays exactly flat, while the
        # LoRA B matrices (zero at the start) still take a different tiny value at each step.
        "--set", "learning_rate=1e-30", "--set", "lr_scheduler=cosine", "--set", "warmup_steps=0",
        "--set", "eval.limit=1",
        # Each pass reads 3 of the 4 validation rows (the same 3, in the resumed run too).
        "--set", "val_rows=3"]


def tensors(folder) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def same(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def val_events(run: Run) -> list[dict]:
    return [e for e in read_events(run.events_path) if e["type"] == "val"]


@pytest.mark.timeout(600)
def test_a_flat_validation_loss_stops_the_run_keeps_the_best_step_and_resumes_with_its_count(tmp_path, tiny_model):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = start(tmp_path / "a", tiny_model, *FLAT)
    assert wait_for(whole) == "succeeded", (whole.dir / "runner.log").read_text()[-3000:]
    # Passes at steps 1, 2, 3: the first is the best, the next two do not improve on it.
    assert train_steps(whole) == [1, 2, 3]
    assert [(e["step"], e["best_step"], e["since_best"]) for e in val_events(whole)] == [(1, 1, 0), (2, 1, 1), (3, 1, 2)]
    assert [e["rows"] for e in val_events(whole)] == [3, 3, 3] and whole.spec.split_sizes["val"] == 4
    hw = [e for e in read_events(whole.events_path) if e["type"] == "hw"]
    assert hw and all(e["peak_rss"] >= e["rss_bytes"] > 0 for e in hw) and hw[-1]["processes"] == 1
    # The adapter holds the weights of step 1 (kept from pruning), not those of the last step.
    kept = tensors(whole.adapter_path)
    assert same(kept, tensors(whole.checkpoints_path / "step-1"))
    assert not same(kept, tensors(whole.checkpoints_path / "step-3"))
    assert "finetuned" in whole.eval_metrics()
    # The schedule reached the Trainer: the rate follows half a cosine over the 12 planned steps.
    lrs = [e["lr"] / 1e-30 for e in read_events(whole.events_path) if e["type"] == "train"]
    assert lrs == pytest.approx([0.5 * (1 + math.cos(math.pi * k / 12)) for k in range(3)], rel=1e-6)
    assert lrs[1] != pytest.approx(1 - 1 / 12, rel=1e-3)  # what the linear default gives

    info = json.loads(run_cli("show", whole.id, "--json").stdout)
    assert (info["stopped_early_at"], info["kept_step"]) == (3, 1)
    assert (info["val_rows"], info["val_split_rows"]) == (3, 4)
    assert info["peak_rss"] == hw[-1]["peak_rss"] and info["tokens_per_s"] > 0 and info["mfu"] is None  # a CPU
    shown = run_cli("show", whole.id).stdout
    assert "val rows     val loss on 3 of 4 rows each pass" in shown, shown
    assert f"peak RSS     {hw[-1]['peak_rss'] / 2**30:.2f} GiB" in shown
    assert f"speed        {info['tokens_per_s']:,.0f} tok/s\n" in shown and "MFU" not in shown
    best = val_events(whole)[0]["loss"]
    assert (f"validation   stopped early at step 3: validation loss not improved for 2 passes; "
            f"kept step 1 (val {best:.4f})") in shown, shown
    assert "lr_scheduler=cosine" in shown and "early_stop_patience=2" in shown

    # Stopped after its first step and resumed: the count goes on from the checkpoint's passes
    # (counted afresh, the resumed run would keep step 2 and stop at step 4).
    stopped = start(tmp_path / "b", tiny_model, *FLAT)
    stopped.stop_path.touch()
    assert wait_for(stopped) == "cancelled"
    assert train_steps(stopped) == [1]
    res = run_cli("resume", stopped.id)
    assert res.returncode == 0, res.stderr
    assert wait_for(stopped) == "succeeded", (stopped.dir / "runner.log").read_text()[-3000:]
    assert train_steps(stopped) == [1, 2, 3]
    assert [(e["step"], e["best_step"], e["since_best"]) for e in val_events(stopped)] == [(1, 1, 0), (2, 1, 1), (3, 1, 2)]
    # The resumed session read the same validation rows: the same losses as the whole run's.
    assert [(e["rows"], e["loss"]) for e in val_events(stopped)] == [(e["rows"], e["loss"]) for e in val_events(whole)]
    assert same(tensors(stopped.adapter_path), kept)


@pytest.mark.parametrize("setting, says", [
    ("early_stop_patience=-1", "local.early_stop_patience: must be a whole number of validation passes >= 0"),
    ("early_stop_patience=1.5", "local.early_stop_patience"),
    ("lr_scheduler=cosine_with_restarts", "must be one of linear, cosine, constant"),
    ("warmup_steps=2.5", "local.warmup_steps: must be a fraction of the steps (0 to < 1) or a whole number"),
    ("keep_best=maybe", "expected true or false"),
])
def test_bad_schedule_and_early_stopping_settings_exit_2_naming_them(tmp_path, setting, says):
    res = run_cli("train", "--data", str(toy_data(tmp_path)), "--task", "text", "--set", setting)
    assert res.returncode == 2 and says in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_early_stopping_without_validation_rows_is_refused(tmp_path):
    res = run_cli("train", "--data", str(toy_data(tmp_path)), "--task", "text", "--set", "split.val=0",
                  "--set", "early_stop_patience=3")
    assert res.returncode == 2 and "early_stop_patience=3" in res.stderr and "split.val" in res.stderr, res.stderr


async def test_the_training_screen_says_the_run_stopped_early(ftui_home):
    from ftui.tui.app import FtuiApp

    run = make_run(ftui_home, RUN_A, steps=30, total=50, evaluated=False)
    rewrite_spec(run, hyperparameters={"model": "smollm2-135m", "epochs": 1, "learning_rate": 2e-4,
                                       "early_stop_patience": 2, "keep_best": True})
    run.adapter_path.mkdir()
    (run.adapter_path / "adapter_config.json").write_text("{}")
    events = [e for e in read_events(run.events_path) if e["type"] != "val"]
    passes = [(10, 1.21, 10, 0), (20, 1.23, 10, 1), (30, 1.25, 10, 2)]
    events[-1:-1] = [ev("val", T0 + 70 + s, step=s, loss=loss, best_step=b, best_loss=1.21, since_best=n)
                     for s, loss, b, n in passes]
    write_events(run.dir, events)
    app = FtuiApp(attach=run, services=fake_services())
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_until(pilot, lambda: "stopped early" in screen_text(app), what="the early stop")
        assert ("stopped early at step 30: validation loss not improved for 2 passes; kept step 10 (val 1.2100)"
                in " ".join(screen_text(app).split()))
