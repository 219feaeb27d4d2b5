"""The Backend screen says what a training will do before it starts (#18 point 5): examples,
steps and tokens, a time only from a speed an earlier run measured here, the memory for the
data's own length, and a Tab order down the form to Start; the OpenAI tab and the Study form
say what cannot start once, without colour (#18 point 6)."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

from ftui.core.machine import estimate_fit, model_shape
from ftui.core.openai_prep import WIND_DOWN
from ftui.core.plan import TokenCounts, measured_speeds, plan_training, steps_per_epoch
from ftui.core.runs import Run, write_json_atomic
from ftui.tui.app import FtuiApp
from test_tui import (RUN_A, RUN_B, RUN_C, TOKENS, fake_services, gpu_machine, make_run, open_study_form, screen_text,  # noqa: F401
                      train_events, utc, wait_until, write_events)  # utc: autouse

MEAN_TOKENS = TOKENS["tokens"]["mean"]  # 108.2 a conversation, the longest 170; demo trains on 1,200


def measured_run(root: Path, rid: str, *, created: float, tokens_per_s: float, method: str = "lora",
                 model: str = "smollm2-135m", host: str | None = None) -> Run:
    """A finished local run whose train events measured ``tokens_per_s`` (on ``host``: this one by default)."""
    run = make_run(root, rid, created=created, model=model, evaluated=False)
    spec = json.loads((run.dir / "run.json").read_text())
    write_json_atomic(run.dir / "run.json", {**spec, "hyperparameters": {**spec["hyperparameters"], "method": method}})
    write_events(run.dir, [dict(e, tokens_per_s=tokens_per_s) if e["type"] == "train" else e
                           for e in train_events(50, 50, t0=created)])
    if host is not None:
        status = json.loads(run.status_path.read_text())
        write_json_atomic(run.status_path, {**status, "host": host})
    return Run(run.dir)


async def open_backend(app, pilot) -> Any:
    await wait_until(pilot, lambda: app.screen.choice is not None)
    await pilot.press("n")
    await wait_until(pilot, lambda: getattr(app.screen, "machine", None) is not None
                     and app.screen.speeds is not None, what="the Backend screen, its hardware and speeds")
    return app.screen


def plain(widget) -> str:
    """What a Static holds as plain text, unwrapped (a Group's lines too)."""
    console = Console(width=300, file=io.StringIO(), color_system=None)
    with console.capture() as captured:
        console.print(widget.content)
    return captured.get()


def plan(be) -> str:
    return plain(be.query_one("#plan-text"))


# -- pure parts -------------------------------------------------------------------------

def test_steps_follow_the_trainer_and_the_plan_counts_tokens_per_epoch():
    # the Trainer: ceil(batches / grad_accum), batches shared among processes, at least one step
    assert steps_per_epoch(340, batch_size=8) == 43
    assert steps_per_epoch(340, batch_size=8, grad_accum=2) == 22
    assert steps_per_epoch(340, batch_size=8, processes=4) == 11
    assert steps_per_epoch(3, batch_size=8, grad_accum=4) == 1
    counts = TokenCounts.from_report(TOKENS)
    p = plan_training(examples=340, batch_size=8, grad_accum=1, epochs=3, max_steps=-1, max_length=256, tokens=counts)
    assert (p.steps_per_epoch, p.total_steps, p.tokens_per_epoch) == (43, 129, round(MEAN_TOKENS * 340))
    assert p.line() == "340 examples, ~36.8K tokens: 43 steps/epoch × 3 = 129 steps"
    short = plan_training(examples=340, batch_size=8, grad_accum=1, epochs=0.5, max_steps=-1, max_length=64,
                          tokens=counts)
    assert short.total_steps == 22 and short.tokens_per_epoch == 64 * 340  # examples cut at max_length
    capped = plan_training(examples=340, batch_size=8, grad_accum=1, epochs=3, max_steps=10, max_length=256,
                           tokens=None)
    assert capped.total_steps == 10 and capped.tokens is None
    assert capped.line() == "340 examples: 43 steps/epoch; max steps 10 = 0.23 epochs"
    assert TokenCounts.from_report("no tokenizer") is None and TokenCounts.from_report({"tokens": None}) is None


def test_measured_speeds_are_local_runs_of_this_host_newest_first(ftui_home):
    from ftui.core.runs import list_runs

    measured_run(ftui_home, RUN_A, created=1795000000.0, tokens_per_s=450.0)
    measured_run(ftui_home, RUN_B, created=1795001000.0, tokens_per_s=900.0, host="another-box")
    measured_run(ftui_home, RUN_C, created=1795002000.0, tokens_per_s=300.0, method="full")
    make_run(ftui_home, "20261118-100000-demo-dddd", created=1795003000.0, backend="openai",
             model="smollm2-135m", evaluated=False)  # remote: its rates are not this machine's
    speeds = measured_speeds(list_runs())
    assert [(s.run_id, s.method, s.tokens_per_s) for s in speeds] == [(RUN_C, "full", 300.0), (RUN_A, "lora", 450.0)]


# -- the Backend screen -----------------------------------------------------------------

async def test_backend_plan_shows_steps_and_tokens_and_no_time_without_a_measurement():
    app = FtuiApp(services=fake_services(detect_machine=gpu_machine))
    async with app.run_test(size=(80, 24)) as pilot:
        be = await open_backend(app, pilot)
        await wait_until(pilot, lambda: "~130K tokens" in plan(be), what="the token count in the plan")
        text = screen_text(app)
        assert "plan  1,200 examples, ~130K tokens: 150 steps/epoch × 1 = 150 steps" in text
        assert "time: no measurement yet (no earlier run of smollm2-135m on this machine)" in text
        assert "tok/s" not in plan(be)  # no rate that nobody measured
        assert be.query_one("#f-max_steps").value == "" and "-1: as the epochs need" in text  # the placeholder
        be.query_one("#f-batch_size").value = "4"
        be.query_one("#f-epochs").value = "2"
        await pilot.pause()
        assert "300 steps/epoch × 2 = 600 steps" in plan(be)
        be.query_one("#f-extra").value = "grad_accum=2 eval.limit=8"
        await pilot.pause()
        assert "150 steps/epoch × 2 = 300 steps" in plan(be)
        be.query_one("#f-max_steps").value = "100"
        await pilot.pause()
        assert "150 steps/epoch; max steps 100 = 0.67 epochs" in plan(be)
        be.query_one("#f-max_steps").value = "0"
        await pilot.pause()
        assert "max steps is -1 (as the epochs need) or 1 and more" in plan(be)
        be.query_one("#f-max_steps").value = ""
        await pilot.pause()
        assert "150 steps/epoch × 2 = 300 steps" in plan(be) and "max_steps=" not in " ".join(be.local_overrides())


async def test_backend_time_comes_from_an_earlier_run_of_the_same_model_on_this_machine(ftui_home):
    measured_run(ftui_home, RUN_A, created=1795000000.0, tokens_per_s=450.0)
    measured_run(ftui_home, RUN_B, created=1795001000.0, tokens_per_s=900.0, host="another-box")
    measured_run(ftui_home, RUN_C, created=1795002000.0, tokens_per_s=300.0, method="full")
    app = FtuiApp(services=fake_services(detect_machine=gpu_machine))
    async with app.run_test(size=(80, 24)) as pilot:
        be = await open_backend(app, pilot)
        await wait_until(pilot, lambda: "~130K tokens" in plan(be), what="the token count in the plan")
        # 1 epoch of 1,200 examples of 108.2 tokens at 300 tok/s (the full run here: the demo's
        # method; not the faster run of another host)
        seconds = round(MEAN_TOKENS * 1200) / 300
        assert round(seconds) == 433
        assert f"~7m 13s of training at 300 tok/s, from run {RUN_C}" in screen_text(app)
        be.query_one("#f-method").value = "lora"  # the lora run's speed, though the full run is newer
        await wait_until(pilot, lambda: "450 tok/s" in plan(be), what="the lora run's speed")
        assert f"~4m 49s of training at 450 tok/s, from run {RUN_A}" in plan(be)
        be.query_one("#f-method").value = "ia3"  # no ia3 run: the newest of the model, named by its method
        await wait_until(pilot, lambda: "full run" in plan(be), what="another method's speed")
        assert f"at 300 tok/s, from full run {RUN_C}" in plan(be)
        be.query_one("#f-model").value = "qwen2.5-0.5b-instruct"
        await wait_until(pilot, lambda: "no measurement yet" in plan(be))
        assert "no earlier run of qwen2.5-0.5b-instruct on this machine" in plan(be)


async def test_backend_memory_uses_the_longest_example_and_the_plan_follows_a_late_token_count():
    counted = threading.Event()

    def slow_count(**kwargs: Any) -> dict[str, Any]:
        counted.wait(10)
        return TOKENS

    app = FtuiApp(services=fake_services(detect_machine=gpu_machine, count_tokens=slow_count))
    async with app.run_test(size=(80, 24)) as pilot:
        be = await open_backend(app, pilot)
        fit = lambda: plain(be.query_one("#fit-text"))  # noqa: E731
        shape = model_shape("smollm2-135m")

        def breakdown(length: int) -> str:
            return estimate_fit(shape, method="full", device="cuda", precision="bf16", quantization="none",
                                lora_r=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                num_virtual_tokens=20, batch_size=8, max_length=length,
                                available=141 * 2**30).lines()[0]

        assert breakdown(256) != breakdown(170)
        # before the count: max length, and the plan says the tokens are not known yet
        assert breakdown(256) in fit() and "batches of 8 × 256 tokens (max length)" in fit()
        assert plan(be).startswith("plan  1,200 examples: 150 steps/epoch")
        counted.set()
        await wait_until(pilot, lambda: "~130K tokens" in plan(be), what="the late count in the plan")
        assert breakdown(170) in fit() and "batches of 8 × 170 tokens (longest example)" in fit()
        assert "fits: 141.0 GiB GPU memory; batches of 8 × 170 tokens (longest example)" in screen_text(app)
        be.query_one("#f-max_length").value = "128"  # shorter than the longest example: cut there
        await pilot.pause()
        assert breakdown(128) in fit() and "batches of 8 × 128 tokens (max length)" in fit()


async def test_backend_tab_goes_down_the_form_and_reaches_start_last():
    app = FtuiApp(services=fake_services(detect_machine=gpu_machine))

    def focused() -> str:  # the group's title has no id of its own
        return app.focused.id or type(app.focused).__name__

    async with app.run_test(size=(80, 24)) as pilot:
        be = await open_backend(app, pilot)
        order = [focused()]
        while focused() != "start" and len(order) < 30:
            await pilot.press("tab")
            order.append(focused())
        assert order == ["f-method", "f-model", "f-epochs", "f-learning_rate", "f-batch_size",  # full: no LoRA
                         "f-max_length", "f-max_steps", "f-precision", "f-devices", "CollapsibleTitle", "f-extra",
                         "report-tensorboard", "report-mlflow", "report-wandb", "start"]
        be.query_one("#f-method").value = "lora"
        await pilot.pause()
        be.query_one("#f-method").focus()
        await pilot.pause()
        order = [focused()]
        while focused() != "start" and len(order) < 30:
            await pilot.press("tab")
            order.append(focused())
        assert order == ["f-method", "f-quantization", "f-model", "f-epochs", "f-learning_rate", "f-batch_size",
                         "f-max_length", "f-max_steps", "f-precision", "f-target_modules", "f-lora_r",
                         "f-lora_alpha", "f-lora_dropout", "f-devices", "CollapsibleTitle", "f-extra",
                         "report-tensorboard", "report-mlflow", "report-wandb", "start"]
        be.query_one("#f-method").value = "prefix"  # the hidden fields are no stops, nor is a disabled one
        await pilot.pause()
        be.query_one("#f-max_steps").focus()
        order = []
        for _ in range(9):
            await pilot.press("tab")
            order.append(focused())
        assert order == ["f-precision", "f-num_virtual_tokens", "f-devices", "CollapsibleTitle", "f-extra",
                         "report-tensorboard", "report-mlflow", "report-wandb", "start"]
        # Enter opens the group: its fields come next, in the form's columns
        await pilot.press("shift+tab", "shift+tab", "shift+tab", "shift+tab", "shift+tab", "enter")
        await wait_until(pilot, lambda: not be.query_one("#schedule-form-group").collapsed, what="the open group")
        order = []
        for _ in range(6):
            await pilot.press("tab")
            order.append(focused())
        assert order == ["f-lr_scheduler", "f-warmup_steps", "f-val_rows", "f-early_stop_patience", "f-keep_best",
                         "f-extra"]
        assert be.query_one("#f-val_rows").region.x == be.query_one("#f-epochs").region.x


async def test_backend_schedule_and_validation_settings_reach_the_run_and_a_bad_value_is_named_at_its_field():
    launched: list[Run] = []
    app = FtuiApp(services=fake_services(detect_machine=gpu_machine, launch=lambda run: launched.append(run) or 0))
    async with app.run_test(size=(80, 24)) as pilot:
        be = await open_backend(app, pilot)
        group = be.query_one("#schedule-form-group")
        text = screen_text(app)
        assert group.collapsed and "▶ schedule & validation " in text and "val rows" not in text  # one line
        assert be.query_one("#f-keep_best").value == "true" and be.query_one("#f-val_rows").value == "64"
        group.collapsed = False
        await pilot.pause()
        # checked as they are typed, the way --set reads them: tinted, and why under the group's fields
        be.query_one("#f-val_rows").value = "many"
        be.query_one("#f-early_stop_patience").value = "-1"
        await pilot.pause()
        problems = plain(be.query_one("#schedule-form-problems"))
        assert "val rows: expected a number, got 'many'" in problems
        assert "stop patience: must be a whole number of validation passes >= 0 (0: off), got -1" in problems
        assert be.query_one("#f-val_rows").has_class("refused")
        be.query_one("#schedule-form-problems").scroll_visible(animate=False)
        await pilot.pause()
        assert "val rows: expected a number, got 'many'" in screen_text(app)  # on screen, whole
        be.query_one("#f-val_rows").value = "all"
        be.query_one("#f-early_stop_patience").value = "2"
        be.query_one("#f-lr_scheduler").value = "cosine"
        be.query_one("#f-devices").value = "cpu"  # a GPU id is checked at Start against the machine the test runs on
        await pilot.pause()
        assert be.query_one("#schedule-form-problems").has_class("hidden")
        assert not be.query_one("#f-val_rows").has_class("refused")
        group.collapsed = True  # closed, its title still says what it changes
        await pilot.pause()
        assert group.title == "schedule & validation: LR schedule cosine, val rows all, stop patience 2"
        # a schedule the select does not offer, typed in the free-form field: refused at Start,
        # naming the setting, on that field
        be.query_one("#f-extra").value = "lr_scheduler=foo"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "lr_scheduler" in str(be.query_one("#start-error").render()), what="error")
        says = "local.lr_scheduler: must be one of linear, cosine, constant"
        assert says in str(be.query_one("#start-error").render()) and launched == []
        assert be.query_one("#f-extra").has_class("refused") and says in plain(be.query_one("#more-form-problems"))
        # a refusal about a field in the closed group opens it and goes to the field
        be.query_one("#f-extra").value = "split.val=0"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not group.collapsed, what="the group opened")
        await wait_until(pilot, lambda: app.focused is be.query_one("#f-early_stop_patience"), what="the field")
        assert be.query_one("#f-early_stop_patience").has_class("refused") and not be.query_one("#f-extra").has_class("refused")
        assert "early_stop_patience=2 watches the validation loss" in plain(be.query_one("#schedule-form-problems"))
        be.query_one("#f-extra").value = ""
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "TrainingScreen", timeout=30)
        run = launched[0]
        hp = run.spec.hyperparameters
        assert (hp.early_stop_patience, hp.lr_scheduler, hp.val_rows, hp.devices) == (2, "cosine", 0, ("cpu",))
        assert (hp.keep_best, hp.warmup_steps) == (True, 0.05)  # untouched: the preset's
        saved = json.loads((run.dir / "run.json").read_text())["hyperparameters"]
        assert {k: saved[k] for k in ("early_stop_patience", "lr_scheduler", "val_rows", "devices")} == \
            {"early_stop_patience": 2, "lr_scheduler": "cosine", "val_rows": 0, "devices": ["cpu"]}


async def test_openai_tab_says_the_wind_down_once_and_a_missing_key_once(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    launched: list[Run] = []
    app = FtuiApp(services=fake_services(launch=lambda run: launched.append(run) or 0))
    async with app.run_test(size=(80, 24)) as pilot:
        be = await open_backend(app, pilot)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: be.preflight is not None or bool(be.preflight_error), timeout=30,
                         what="the estimate")
        text = screen_text(app)
        assert plain(be.query_one("#wind-down")).startswith(WIND_DOWN)
        assert text.index("OpenAI has closed self-serve") < text.index("base model")  # at the top, on screen
        assert text.count("winding") == 1 and text.count("2027-01-06") == 1
        assert text.count("OPENAI_API_KEY") == 1 and "OPENAI_API_KEY is not set" in text
        assert "cost estimate" in text and "API key " in text  # the key's line, once, above it
        await pilot.press("ctrl+s")
        await pilot.pause()
        text = screen_text(app)
        assert "not started: no API key (see above)" in text and text.count("OPENAI_API_KEY") == 1
        assert launched == [] and type(app.screen).__name__ == "BackendScreen"


async def test_study_form_ticks_only_what_can_start_and_shows_unticked_boxes_empty(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    app = FtuiApp(services=fake_services())
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await open_study_form(app, pilot)
        text = screen_text(app)
        assert modal.query_one("#study-local").value and not modal.query_one("#study-openai").value
        # without colour a capture tells them apart: Textual's box draws an X either way
        assert "▐X▌ local" in text and "▐ ▌ openai" in text and "▐X▌ openai" not in text
        assert text.count("OPENAI_API_KEY is not set") == 1
        modal.query_one("#study-openai").value = True
        await pilot.pause()
        assert "▐X▌ openai" in screen_text(app)
