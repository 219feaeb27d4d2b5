"""Validation that does not eat the run: a seeded subset of the validation split each pass, the
rows it read recorded on every ``val`` event and shown; MFU on GPU runs. (A real run's passes,
their rows, peak RSS and what ``ftui show`` prints of them: test_early_stopping.py's run.)"""

from __future__ import annotations

import pytest

from ftui.core.events import read_events
from ftui.core.mfu import flops_per_token, gpu_peak_flops, mfu, run_mfu
from ftui.core.validation import describe, validation_subset

from conftest import run_cli
from test_runner import toy_data
from test_tui import RUN_A, T0, ev, fake_services, make_run, screen_text, wait_until, write_events


def test_the_subset_is_fixed_by_the_seed_its_size_honoured_longest_first():
    lengths = [(i * 37) % 101 + 5 for i in range(714)]
    first = validation_subset(lengths, val_rows=64, seed=3)
    assert len(first) == len(set(first)) == 64 and set(first) <= set(range(714))
    assert first == validation_subset(lengths, val_rows=64, seed=3)  # a resume reads the same rows
    assert set(first) != set(validation_subset(lengths, val_rows=64, seed=4))
    assert [lengths[i] for i in first] == sorted((lengths[i] for i in first), reverse=True)  # batches pad little
    # The whole split on request (0), and a split smaller than val_rows is read whole.
    assert sorted(validation_subset(lengths, val_rows=0, seed=3)) == list(range(714))
    assert sorted(validation_subset(lengths[:20], val_rows=64, seed=3)) == list(range(20))
    assert describe(64, 714) == "val loss on 64 of 714 rows" and describe(20, 20) == "val loss on all 20 rows"


def test_following_a_run_says_how_many_rows_a_pass_read():
    from ftui.cli.follow import describe as line

    event = {"type": "val", "step": 50, "loss": 1.2345, "token_accuracy": 0.612, "rows": 64}
    assert line(event) == "validation at step 50 (64 rows): loss 1.2345, token accuracy 61.2%"


def test_val_rows_all_is_the_whole_split_and_bad_values_are_named():
    from ftui.core.config import LocalSettings
    from ftui.core.errors import ConfigError
    from ftui.core.request import apply_overrides

    settings = {"local": LocalSettings()}
    assert LocalSettings().val_rows == 64
    assert apply_overrides(settings, ["val_rows=all"], "local")["local"].val_rows == 0
    assert apply_overrides(settings, ["val_rows=ALL"], "local")["local"].val_rows == 0
    assert apply_overrides(settings, ["val_rows=200"], "local")["local"].val_rows == 200
    with pytest.raises(ConfigError, match="batch_size"):  # "all" means something to val_rows only
        apply_overrides(settings, ["batch_size=all"], "local")


@pytest.mark.parametrize("value", ["-1", "1.5", "some"])
def test_bad_val_rows_exit_2_naming_the_setting(tmp_path, value):
    res = run_cli("train", "--data", str(toy_data(tmp_path)), "--task", "text", "--set", f"val_rows={value}")
    assert res.returncode == 2 and "val_rows" in res.stderr and "Traceback" not in res.stderr, res.stderr


H100 = {"gpu_name": "NVIDIA H100 80GB HBM3", "total_params": 135_000_000, "trainable_params": 1_000_000,
        "processes": 1}


def test_mfu_of_an_h100_run_from_its_events():
    # LoRA: 4 N + 2 T FLOPs a token; full fine-tuning: 6 N.
    assert flops_per_token(135e6, 1e6) == 4 * 135e6 + 2 * 1e6
    assert flops_per_token(135e6, 135e6) == 6 * 135e6
    share = run_mfu({"tokens_per_s": 200_000.0}, H100)
    assert share == pytest.approx((4 * 135e6 + 2 * 1e6) * 200_000 / 989.4e12)
    assert run_mfu({"tokens_per_s": 200_000.0}, {**H100, "processes": 2}) == pytest.approx(share / 2)
    # No made-up number: no GPU, a GPU without a known peak, no parameter counts yet.
    assert run_mfu({"tokens_per_s": 200_000.0}, {"cpu_percent": 190.0, "total_params": 135e6,
                                                  "trainable_params": 1e6}) is None
    assert run_mfu({"tokens_per_s": 200_000.0}, {**H100, "gpu_name": "NVIDIA A10G"}) is None
    assert mfu(tokens_per_s=200_000.0, hw={"gpu_name": H100["gpu_name"]}) is None
    # The table by name, most specific first, whole words only.
    assert gpu_peak_flops("NVIDIA H100 PCIe") == 756e12 and gpu_peak_flops("NVIDIA H200") == 989.4e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12 and gpu_peak_flops("NVIDIA L4") == 121e12
    assert gpu_peak_flops("NVIDIA L40S") == 362.05e12 and gpu_peak_flops("NVIDIA GeForce RTX 4090") == 165.2e12


async def test_the_training_screen_shows_mfu_and_what_validation_reads(ftui_home):
    from ftui.tui.app import FtuiApp

    run = make_run(ftui_home, RUN_A, state="running", steps=20, total=50, evaluated=False)
    events = [e for e in read_events(run.events_path) if e["type"] != "val"]
    events += [ev("val", T0 + 50, step=20, loss=1.25, token_accuracy=0.61, rows=3),
               ev("hw", T0 + 51, **H100, gpu_util=97.0, peak_rss=3 * 2**30, peak_mem_bytes=20 * 2**30,
                  gpus=[{"index": 0, "name": H100["gpu_name"], "mem_total": 80 * 2**30, "mem_used": 21 * 2**30,
                         "util": 97.0, "power_w": 640.0}]),
               ev("train", T0 + 52, step=21, total_steps=50, epoch=1.05, loss=1.1, lr=2e-4, tokens=21 * 900,
                  tokens_per_s=200_000.0)]
    write_events(run.dir, events)
    app = FtuiApp(attach=run, services=fake_services())
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_until(pilot, lambda: "MFU" in screen_text(app), what="the MFU")
        text = " ".join(screen_text(app).split())
        assert "val loss on 3 of 5 rows" in text and "200,000 tok/s · MFU 11.0%" in text, text
        assert "peak 20.0 GiB" in text and "peak RSS 3.0 GiB" in text, text
