"""SVG snapshots of every screen at 80x24 and at a large size, on fixed fixture runs.

Update only after looking at them: ``pytest tests/test_tui_snapshots.py --snapshot-update``,
then open ``snapshot_report.html``.
"""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input

from ftui.tui.app import FtuiApp
from test_tui import (EXAMPLES, RUN_A, RUN_B, STUDY, T0, ev, failed_run, fake_services, gpu_machine,  # noqa: F401
                      make_run, make_study, rewrite_spec, study_runs, utc, wait_until, write_events, write_heldout,
                      write_variant, evaluating_run)  # utc: autouse

SIZES = {"80x24": (80, 24), "large": (140, 44)}


def still(app) -> None:
    """No blinking cursors: a snapshot shows the same frame every time."""
    for widget in app.screen.query(Input):
        widget.cursor_blink = False


@pytest.mark.parametrize("size", SIZES)
def test_dataset_screen(snap_compare, size):
    app = FtuiApp(services=fake_services())

    async def ready(pilot):
        await wait_until(pilot, lambda: app.screen.choice is not None and "min 66, mean" in _text(app))

    assert snap_compare(app, terminal_size=SIZES[size], run_before=ready)


def test_dataset_examples_tab(snap_compare):
    app = FtuiApp(services=fake_services())

    async def ready(pilot):
        await wait_until(pilot, lambda: app.screen.choice is not None)
        await pilot.press("t")
        await wait_until(pilot, lambda: "line 1:" in _text(app))

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_dataset_example_reference_wraps(snap_compare):
    """Dataset -> Examples at 80x24, scrolled to the end: the reference (the assistant turn) wraps."""
    app = FtuiApp(services=fake_services())

    async def ready(pilot):
        await wait_until(pilot, lambda: app.screen.choice is not None)
        await pilot.press("t")
        await wait_until(pilot, lambda: "line 1:" in _text(app))
        view = app.screen.query_one("#example-scroll")
        view.scroll_end(animate=False)
        await wait_until(pilot, lambda: view.scroll_y == view.max_scroll_y > 0)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_backend_screen(snap_compare, size):
    app = FtuiApp(services=fake_services(detect_machine=gpu_machine))

    async def ready(pilot):
        await wait_until(pilot, lambda: app.screen.choice is not None)
        await pilot.press("n")
        await wait_until(pilot, lambda: getattr(app.screen, "machine", None) is not None)
        await wait_until(pilot, lambda: "~130K tokens" in _text(app) and "no measurement yet" in _text(app))
        still(app)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=ready)


def test_backend_screen_prefix_tuning(snap_compare):
    """The method's own fields: virtual tokens in, the LoRA rows out, the estimate for prefix."""
    app = FtuiApp(services=fake_services(detect_machine=gpu_machine))

    async def ready(pilot):
        await wait_until(pilot, lambda: app.screen.choice is not None)
        await pilot.press("n")
        await wait_until(pilot, lambda: getattr(app.screen, "machine", None) is not None)
        app.screen.query_one("#f-method").value = "prefix"
        await wait_until(pilot, lambda: "trainable (prefix tuning)" in _text(app))
        await wait_until(pilot, lambda: "~130K tokens" in _text(app) and "no measurement yet" in _text(app))
        still(app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_backend_openai_tab_without_a_key(snap_compare, monkeypatch):
    """The wind-down at the top, then the form; the missing key said once, above the estimate."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    app = FtuiApp(services=fake_services(detect_machine=gpu_machine))

    async def ready(pilot):
        await wait_until(pilot, lambda: app.screen.choice is not None)
        await pilot.press("n")
        await wait_until(pilot, lambda: getattr(app.screen, "machine", None) is not None)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: app.screen.preflight is not None, timeout=30, what="the estimate")
        still(app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_training_screen(snap_compare, size, ftui_home):
    run = make_run(ftui_home, RUN_A, state="running", steps=30, total=50, evaluated=False)
    app = FtuiApp(attach=run, services=fake_services())

    async def ready(pilot):
        ts = app.screen
        await wait_until(pilot, lambda: "ETA" in _text(app) and ts.progress.step == 30)
        chart = ts.query_one("#chart")
        await wait_until(pilot, lambda: len(chart._train) == 30 and not chart._dirty, what="the chart")

    assert snap_compare(app, terminal_size=SIZES[size], run_before=ready)


def test_training_screen_of_a_failed_run(snap_compare, ftui_home):
    """The reason wraps whole under the state; the event log wraps its lines at 80 columns."""
    app = FtuiApp(attach=failed_run(ftui_home), services=fake_services())

    async def ready(pilot):
        ts = app.screen
        await wait_until(pilot, lambda: ts.status.get("state") == "failed" and ts.progress.errors)
        chart = ts.query_one("#chart")
        await wait_until(pilot, lambda: len(chart._train) == 3 and not chart._dirty, what="the chart")
        app.clear_notifications()  # the toast would cover the log
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_eval_screen(snap_compare, size, ftui_home):
    run = make_run(ftui_home, RUN_A)
    app = FtuiApp(attach=run, services=fake_services())

    async def ready(pilot):
        await wait_until(pilot, lambda: getattr(app.screen, "data", None) is not None)
        await pilot.press("right", "right", "right")  # the example the fine-tuned model gets wrong

    assert snap_compare(app, terminal_size=SIZES[size], run_before=ready)


def test_eval_screen_while_evaluating(snap_compare, ftui_home):
    """Opened while k-shot generates: base alone, and the line under the header says what comes."""
    run = evaluating_run(ftui_home)
    app = FtuiApp(services=fake_services())

    async def ready(pilot):
        from ftui.tui.screens.eval import EvalScreen

        app.push_screen(EvalScreen(run))
        await wait_until(pilot, lambda: getattr(app.screen, "data", None) is not None
                         and "generating kshot 2/5" in _text(app))

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_runs_screen(snap_compare, size, ftui_home):
    make_run(ftui_home, RUN_A, evaluating=True)  # time: training+evaluation
    make_run(ftui_home, RUN_B, created=T0 + 1000, backend="openai", model="gpt-4.1-nano-2025-04-14")
    make_run(ftui_home, "20261118-120000-demo-cccc", created=T0 + 5000, state="failed", steps=3, evaluated=False)
    app = FtuiApp(services=fake_services())

    async def ready(pilot):
        await pilot.press("R")
        await wait_until(pilot, lambda: len(getattr(app.screen, "runs", [])) == 3)
        await pilot.press("down", "space", "space")

    assert snap_compare(app, terminal_size=SIZES[size], run_before=ready)


def test_compare_screen(snap_compare, ftui_home):
    """Two runs' settings that differ, the warning of other held-out sets, both loss curves."""
    local = make_run(ftui_home, RUN_A)
    remote = make_run(ftui_home, RUN_B, created=T0 + 1000, backend="openai", model="gpt-4.1-nano-2025-04-14")
    # each run.json with a batch size: a setting only one run recorded is no difference
    rewrite_spec(local, hyperparameters={"model": "smollm2-135m", "epochs": 1, "learning_rate": 2e-4, "batch_size": 8})
    rewrite_spec(remote, hyperparameters={"model": "gpt-4.1-nano-2025-04-14", "batch_size": "auto"})
    write_heldout(local, EXAMPLES)
    write_heldout(remote, EXAMPLES[:4])
    events = [json.loads(line) for line in remote.events_path.read_text().splitlines()]
    write_events(remote.dir, [{**e, "loss": round(e["loss"] * 0.7, 5)} if e["type"] == "train" else e
                              for e in events])  # a lower curve, apart from the other
    app = FtuiApp(services=fake_services())

    async def ready(pilot):
        await pilot.press("R")
        await wait_until(pilot, lambda: len(getattr(app.screen, "runs", [])) == 2)
        await pilot.press("space", "space", "m")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        chart = app.screen.query_one("#compare-chart")
        await wait_until(pilot, lambda: not chart._dirty, what="the loss curves")

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_study_screen(snap_compare, ftui_home):
    make_study(ftui_home, STUDY, study_runs(ftui_home))
    app = FtuiApp(services=fake_services())

    async def ready(pilot):
        await pilot.press("R")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.press("T")
        await wait_until(pilot, lambda: STUDY in _text(app))
        await pilot.press("enter")
        await wait_until(pilot, lambda: getattr(app.screen, "data", None) is not None and "best cheapest" in _text(app))

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_export_modal(snap_compare, ftui_home):
    run = make_run(ftui_home, RUN_A)
    app = FtuiApp(attach=run, services=fake_services())

    async def ready(pilot):
        await wait_until(pilot, lambda: getattr(app.screen, "data", None) is not None)
        await pilot.press("x")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ExportModal")
        app.screen.query_one("#export-path").value = "/tmp/ftui-export"  # not the per-test home
        still(app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def _text(app) -> str:
    from test_tui import screen_text

    return screen_text(app)


def test_eval_screen_light_theme(snap_compare, ftui_home, monkeypatch):
    monkeypatch.setenv("FTUI_THEME", "textual-light")
    run = make_run(ftui_home, RUN_A)
    app = FtuiApp(attach=run, services=fake_services())

    async def ready(pilot):
        await wait_until(pilot, lambda: getattr(app.screen, "data", None) is not None)
        await pilot.press("right", "right", "right")

    assert app.theme == "textual-light"
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_training_screen_light_theme(snap_compare, ftui_home, monkeypatch):
    monkeypatch.setenv("FTUI_THEME", "textual-light")
    run = make_run(ftui_home, RUN_A, state="running", steps=30, total=50, evaluated=False)
    app = FtuiApp(attach=run, services=fake_services())

    async def ready(pilot):
        ts = app.screen
        await wait_until(pilot, lambda: "ETA" in _text(app) and ts.progress.step == 30)
        chart = ts.query_one("#chart")
        await wait_until(pilot, lambda: len(chart._train) == 30 and not chart._dirty, what="the chart")

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_playground_screen(snap_compare, ftui_home):
    """Three answers side by side with their badges, timings and (sql) the rows they return."""
    from test_playground import InstantInference, with_weights

    run = with_weights(make_run(ftui_home, RUN_A))
    app = FtuiApp(playground=run, services=fake_services(start_inference=InstantInference))

    async def ready(pilot):
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PlaygroundScreen")
        await pilot.press("pagedown", "enter")  # the oldest singer
        await wait_until(pilot, lambda: len(app.screen.answers) == 3 and all(
            a.verdict is not None for a in app.screen.answers.values()))
        still(app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)
