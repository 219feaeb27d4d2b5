"""`ftui study --grid`: a sweep chosen on the validation rows, its budget, and its resume."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import time
from pathlib import Path

import pytest

from ftui.core.errors import ConfigError
from ftui.core.runs import Run, create_run
from ftui.core.study import create_study, render_csv, render_markdown, render_text, studies_dir, study_table
from ftui.core.request import parse_value
from ftui.core.sweep import Sweep, budget_verdict, combinations, parse_grid, plot_axis

from conftest import run_cli
from test_runner import toy_data
from test_study import _gone

TINY = ["--set", "batch_size=4", "--set", "max_steps=1", "--set", "eval_every=5", "--set", "split.test=4",
        "--set", "split.val=4", "--set", "eval.max_new_tokens=2", "--set", "eval.k=1"]


def _finished(label: str, *, val: dict | None, test: dict | None = None) -> Run:
    """A sweep run as its runner leaves it: trained, evaluated on its validation rows (and the winner on test)."""
    run = create_run(label=label, spec={"backend": "local", "model": "m", "task": "sql", "hyperparameters": {}},
                     splits={})
    run.write_status("succeeded")
    for name, metrics in (("finetuned@val", val), ("finetuned", test)):
        if metrics is not None:
            (run.dir / "eval" / name).mkdir(parents=True)
            (run.dir / "eval" / name / "metrics.json").write_text(json.dumps({"n": 8, "metrics": metrics}))
    return run


def test_the_sweep_table_sorts_by_validation_and_reports_the_winners_test_metrics_once():
    a = _finished("a", val={"valid": 0.9, "execution": 0.25})
    b = _finished("b", val={"valid": 0.8, "execution": 0.5}, test={"valid": 0.7, "execution": 0.375})
    c = _finished("c", val={"valid": 1.0, "execution": 0.125})
    d = _finished("d", val=None)
    combos = {a.id: {"learning_rate": "2e-4", "lora_r": "8"}, b.id: {"learning_rate": "5e-4", "lora_r": "8"},
              c.id: {"learning_rate": "2e-4", "lora_r": "32"}, d.id: {"learning_rate": "5e-4", "lora_r": "32"}}
    why = "budget 1 min: 0.90 min spent by 3 run(s), the next would take about 0.30 min"
    study = create_study(preset="demo", label="s", runs=[a, b, c, d], combos=combos,
                         sweep=Sweep(keys=("learning_rate", "lora_r"), budget_minutes=1.0, skipped={d.id: why},
                                     winner=b.id))
    data = study_table(study)
    sweep = data["sweep"]
    assert [r["run"] for r in sweep["rows"]] == [b.id, a.id, c.id, d.id]  # by validation execution, not valid
    assert sweep["best"] == b.id and sweep["test"]["metrics"]["execution"] == 0.375
    assert [r["variant"] for r in data["rows"]] == ["finetuned"]  # the test rows: the winner's alone
    text = render_text(data)
    assert text.splitlines()[1].split() == ["learning_rate", "lora_r", "val", "execution", "val", "valid", "train"]
    assert text.splitlines()[2].split()[:4] == ["5e-4", "8", "50.0%", "80.0%"] and "best" in text.splitlines()[2]
    assert ("best by validation execution: learning_rate=5e-4 lora_r=8 (50.0% on 8 validation rows); "
            "its test execution 37.5% (n=8)") in text
    assert f"skipped {d.id} (learning_rate=5e-4 lora_r=32): {why}" in text
    md = render_markdown(data)
    assert md.index("## Sweep") < md.index("## Test split") and "| learning_rate | lora_r | val execution |" in md
    rows = list(csv.DictReader(io.StringIO(render_csv(data))))
    assert [(r["learning_rate"], r["lora_r"], r["val_execution"]) for r in rows][:2] == [
        ("5e-4", "8", "0.5"), ("2e-4", "8", "0.25")]
    assert rows[0]["test_execution"] == "0.375" and rows[1]["test_execution"] == ""  # the winner's only
    assert rows[3]["skipped"] == why
    # a picture needs a setting with three values or more: two learning rates do not make a trend
    assert plot_axis(sweep) is None
    rows3 = [{"settings": {"learning_rate": lr, "lora_r": r}, "metrics": {"execution": m}}
             for lr, r, m in (("2e-4", "8", 0.1), ("5e-4", "8", 0.3), ("1e-3", "8", 0.2), ("1e-3", "32", 0.4))]
    assert plot_axis({**sweep, "rows": rows3}) == (
        "learning_rate", [("lora_r=8", [(2e-4, 0.1), (5e-4, 0.3), (1e-3, 0.2)]), ("lora_r=32", [(1e-3, 0.4)])])


def test_grid_parsing_and_the_budget_rule():
    grid = parse_grid(["learning_rate=2e-4, 5e-4,2e-4", "local.lora_r=8,32"])
    assert grid == [("learning_rate", ["2e-4", "5e-4"]), ("local.lora_r", ["8", "32"])]
    assert combinations(grid)[:2] == [{"learning_rate": "2e-4", "local.lora_r": "8"},
                                      {"learning_rate": "2e-4", "local.lora_r": "32"}]
    for items, words in [(["lora_r"], "expected KEY=V1,V2"), (["lora_r="], "expected KEY=V1,V2"),
                         (["lora_r=8", "lora_r=16"], "given twice"), (["split.val=4,8"], "one split"),
                         (["eval.limit=5,10"], "different validation sets")]:
        with pytest.raises(ConfigError, match=words):
            parse_grid(items)
    # a list setting's modules are joined by "+" inside one value, as --set also reads them
    modules = parse_grid(["target_modules=q_proj+v_proj,q_proj+k_proj+v_proj+o_proj+gate_proj"])
    assert modules == [("target_modules", ["q_proj+v_proj", "q_proj+k_proj+v_proj+o_proj+gate_proj"])]
    assert parse_value("q_proj+v_proj", ("q_proj",)) == parse_value("q_proj, v_proj", ("q_proj",)) == ("q_proj", "v_proj")
    assert budget_verdict(None, [5.0]) is None and budget_verdict(1.0, []) is None  # the first always starts
    assert budget_verdict(10.0, [3.0, 3.0]) is None  # 6 spent + 3 expected fits
    assert budget_verdict(10.0, [3.0, 4.0]) == (  # 7 spent + 3.5 expected does not
        "budget 10 min: 7.00 min spent by 2 run(s), the next would take about 3.50 min")


def test_bad_grid_input_exits_2_before_any_run_or_study():
    from ftui.runner.study_driver import start_study

    res = run_cli("study", "--preset", "demo", "--grid", "lora_r=8,abc")
    assert res.returncode == 2 and "--grid lora_r=abc: expected a number, got 'abc'" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    for kwargs, words in [
        ({"grid": ["lora_rank=8,16"]}, "--grid lora_rank=8: unknown setting; known: "),
        ({"grid": ["lora_r=8"], "overrides": ["local.lora_r=4"]}, "--grid lora_r and --set lora_r=... both"),
        ({"grid": ["method=lora,ia3"], "methods": ["lora", "dora"]}, "--methods and --grid method=..."),
        ({"grid": ["method=ia3"], "overrides": ["quantization=4bit"]}, "method=ia3 does not train on a quantized base"),
        ({"grid": ["lora_r=8,16"], "backends": ["local", "openai"]}, "run the others as a study of their own"),
        ({"grid": ["lora_r=8,16"], "models": ["local:a", "local:b"]}, "--grid model=a,b"),
        ({"grid": ["lora_r=8,16"], "overrides": ["split.val=0"]}, "these runs have none"),
        ({"budget_minutes": 5.0}, "give the settings to sweep with --grid"),
        ({"grid": ["lora_r=8"], "budget_minutes": 0.0}, "expected minutes above 0"),
    ]:
        args = {"preset": "demo", "data": None, "task": None, "backends": ["local"], "models": [],
                "overrides": [], "confirm": lambda q: False, **kwargs}
        with pytest.raises(ConfigError) as refused:
            start_study(**args)
        assert words in str(refused.value), (kwargs, str(refused.value))
    assert json.loads(run_cli("runs", "--json").stdout) == []
    assert not studies_dir().is_dir() or not list(studies_dir().iterdir())


def _sessions(run: Run) -> int:
    """Runner sessions that worked on the run (each writes one ``starting`` status first)."""
    return sum(1 for line in run.events_path.read_text().splitlines()
               if json.loads(line)["type"] == "status" and json.loads(line)["state"] == "starting")


def test_a_four_run_sweep_killed_mid_way_resumes_launching_nothing_twice(tmp_path, tiny_model):
    res = run_cli("study", "--data", str(toy_data(tmp_path, n=24)), "--task", "text", "--models", str(tiny_model),
                  "--grid", "learning_rate=0.02,0.05", "--grid", "lora_r=4,8", "--budget-minutes", "600", *TINY,
                  "--detach", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    folder = Path(out["dir"])
    runs = [Run(folder.parent.parent / "runs" / r["id"]) for r in out["runs"]]
    assert [r["settings"] for r in out["runs"]] == [
        {"learning_rate": lr, "lora_r": r} for lr in ("0.02", "0.05") for r in ("4", "8")]
    assert [(r.spec.setting("learning_rate"), r.spec.setting("lora_r")) for r in runs] == [
        (0.02, 4), (0.02, 8), (0.05, 4), (0.05, 8)]
    deadline = time.monotonic() + 180
    while "pid" not in runs[1].status():  # the second run is launched: the sweep is half-way
        assert time.monotonic() < deadline, (folder / "study.log").read_text()[-3000:]
        time.sleep(0.2)
    os.kill(out["pid"], signal.SIGKILL)
    while not _gone(out["pid"]):
        time.sleep(0.1)
    again = run_cli("study", out["id"], "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    data = json.loads(again.stdout)
    sweep = data["sweep"]
    assert set(data["states"].values()) == {"succeeded"} and sweep["keys"] == ["learning_rate", "lora_r"]
    scores = [r["metrics"]["exact"] for r in sweep["rows"]]
    assert scores == sorted(scores, reverse=True) and all(r["n"] == 4 for r in sweep["rows"])
    winner = next(r for r in runs if r.id == sweep["winner"])
    assert sweep["best"] == winner.id and sweep["rows"][0]["run"] == winner.id
    for run in runs:  # one runner per run, and one more for the winner's test evaluation
        assert _sessions(run) == (2 if run is winner else 1), run.id
        evals = sorted(p.name for p in (run.dir / "eval").iterdir())
        assert evals == (["base", "finetuned", "finetuned@val", "kshot"] if run is winner else ["finetuned@val"])
    assert [r["variant"] for r in data["rows"]] == ["base", "kshot", "finetuned"]
    assert json.loads((folder / "table.json").read_text())["sweep"]["winner"] == winner.id
    assert "val exact" in (folder / "table.md").read_text()
    assert "started" in again.stderr and again.stderr.count("evaluating it, base and k-shot") == 1


def test_the_budget_stops_launching_where_the_next_run_would_not_fit(monkeypatch):
    """Each run takes a minute (its events say so); 2.5 minutes fit two runs, not a third."""
    import ftui.runner.study_driver as studies
    from ftui.core.events import EventWriter

    study = studies.start_study(preset="demo", data=None, task=None, backends=["local"], models=[],
                                overrides=["split.val=4"], confirm=lambda q: False,
                                grid=["learning_rate=2e-4,5e-4", "lora_r=8,32"], budget_minutes=2.5)
    runs = study.runs()
    assert all((r.dir / "data" / "heldout-val.jsonl").read_bytes() == (r.dir / "data" / "val.jsonl").read_bytes()
               for r in runs)
    launched = []

    def launch(run, *, variants=(), eval_only=False, heldout="", limit=None):
        launched.append((run.id, tuple(variants), eval_only, heldout))
        t0 = 1795000000.0 + 100 * len(launched)
        with EventWriter(run.events_path) as w:
            for dt, state in ((0, "starting"), (1, "running"), (50, "evaluating"), (60, "succeeded")):
                w.write("status", ts=t0 + dt, state=state)
        if not eval_only:  # the validation metric: the second run is the best
            (run.dir / "eval" / "finetuned@val").mkdir(parents=True)
            (run.dir / "eval" / "finetuned@val" / "metrics.json").write_text(json.dumps(
                {"n": 4, "metrics": {"execution": 0.5 if run.id == runs[1].id else 0.25}}))
        run.write_status("succeeded", pid=os.getpid())
        return os.getpid()

    monkeypatch.setattr(studies, "launch", launch)
    log = io.StringIO()
    studies.run_study(study, out=log, poll_s=0.01)
    assert launched == [(runs[0].id, ("finetuned",), False, "val"), (runs[1].id, ("finetuned",), False, "val"),
                        (runs[1].id, ("base", "kshot", "finetuned"), True, "")]
    why = "budget 2.5 min: 2.00 min spent by 2 run(s), the next would take about 1.00 min"
    assert f"skipped {runs[2].id} (learning_rate=5e-4 lora_r=8): {why}" in log.getvalue()
    assert f"skipped {runs[3].id} (learning_rate=5e-4 lora_r=32): budget 2.5 min" in log.getvalue()
    assert [runs[i].status()["state"] for i in (2, 3)] == ["cancelled", "cancelled"]
    assert runs[2].status()["message"] == f"not started: {why}"
    assert list(study.sweep.skipped) == [runs[2].id, runs[3].id] and study.sweep.winner == runs[1].id
    studies.run_study(study, out=io.StringIO(), poll_s=0.01)  # picked up again: nothing more
    assert len(launched) == 3


async def test_the_study_form_takes_a_grid_and_the_study_screen_shows_the_sweep(ftui_home):
    from test_tui import fake_services, open_study_form, screen_text, wait_until

    from ftui.tui.app import FtuiApp

    calls = []

    def start_study(**kwargs):  # the CLI's part, as a sweep it would have made (two runs ended, one running)
        calls.append(kwargs)
        a = _finished("a", val={"valid": 1.0, "execution": 0.25})
        b = _finished("b", val={"valid": 0.75, "execution": 0.5})
        c = create_run(label="c", spec={"backend": "local", "model": "m", "task": "sql", "hyperparameters": {}},
                       splits={})
        c.write_status("running")
        study = create_study(preset="demo", label="s", runs=[a, b, c], sweep=Sweep(keys=("lora_r",)),
                             combos={a.id: {"lora_r": "8"}, b.id: {"lora_r": "32"}, c.id: {"lora_r": "64"}})
        return {"id": study.id, "dir": str(study.dir), "runs": study.info["runs"], "pid": 0}

    app = FtuiApp(services=fake_services(start_study=start_study))
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await open_study_form(app, pilot)
        assert "sweep grid" in screen_text(app) and "Start" in screen_text(app)  # it fits at 80x24
        modal.query_one("#study-budget").value = "soon"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "budget: minutes, e.g. 15; got 'soon'" in screen_text(app))
        modal.query_one("#study-grid").value = "learning_rate=2e-4, 5e-4; lora_r=8,32"
        modal.query_one("#study-budget").value = "12.5"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "StudyScreen" and app.screen.data is not None)
        assert calls[0]["grid"] == ["learning_rate=2e-4, 5e-4", "lora_r=8,32"] and calls[0]["budget_minutes"] == 12.5
        text = screen_text(app)
        assert "sweep, by validation execution:" in text
        lines = text.splitlines()
        order = [next(i for i, line in enumerate(lines) if line.strip().startswith(r)) for r in ("32", "8 ", "64")]
        assert order == sorted(order)  # best first; the running one last
        assert "best by validation execution: lora_r=32 (50.0% on 8 validation rows)" in text


async def test_the_study_screen_plots_a_setting_with_three_values_when_there_is_room(ftui_home):
    from test_tui import fake_services, screen_text, wait_until

    from ftui.tui.app import FtuiApp

    runs = [_finished(lr, val={"execution": m}) for lr, m in (("2e-4", 0.25), ("5e-4", 0.5), ("1e-3", 0.125))]
    study = create_study(preset="demo", label="s", runs=runs, sweep=Sweep(keys=("learning_rate",)),
                         combos={r.id: {"learning_rate": lr} for r, lr in zip(runs, ("2e-4", "5e-4", "1e-3"))})
    for size, shown in (((100, 40), True), ((80, 24), False)):
        app = FtuiApp(services=fake_services())
        async with app.run_test(size=size) as pilot:
            app.show_study(study.id)
            await wait_until(pilot, lambda: type(app.screen).__name__ == "StudyScreen" and app.screen.data is not None)
            await pilot.pause()
            assert app.screen.query_one("#study-chart").display is shown
            assert ("validation execution (%) against learning_rate" in screen_text(app)) is shown
