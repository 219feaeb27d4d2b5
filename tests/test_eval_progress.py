"""A long evaluation is not silent: ``eval_progress`` events, what ``Run.summary``, ``ftui show``
and the follow output make of them, and a real runner that writes them on a tiny model."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from ftui.core.evalplan import PROGRESS_INTERVAL_ENV, EvalProgressReporter, progress_interval_s
from ftui.core.events import EventWriter, make_event, read_events
from ftui.core.examples import Example
from ftui.core.runs import Run, create_run, write_json_atomic
from ftui.cli.follow import eval_progress_line, follow, latest_progress_only

from conftest import run_cli
from test_runner import toy_data, wait_for

T0 = 1795000000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_run(label: str = "evalprog") -> Run:
    ex = [Example(fields={"question": f"q{i}"}, reference=f"a{i}", line=i + 1) for i in range(6)]
    return create_run(label=label, spec={"preset": "demo", "task": "sql", "backend": "local", "model": "m"},
                      splits={"train": ex[:4], "val": ex[4:5], "test": ex[5:]})


def progress(variant: str, done: int, total: int, ts: float, rate: float | None = None,
             eta: float | None = None) -> dict:
    return make_event("eval_progress", ts=ts, variant=variant, done=done, total=total, examples_per_s=rate, eta_s=eta)


def evaluating_events() -> list[dict]:
    """A run that trained, finished base and is a quarter into k-shot."""
    return [
        make_event("status", ts=T0, state="running", message="training"),
        make_event("train", ts=T0 + 1, step=10, total_steps=10, epoch=1.0, loss=0.5, lr=None, tokens=900,
                   tokens_per_s=90.0),
        make_event("status", ts=T0 + 2, state="evaluating", message="evaluating base, kshot, finetuned"),
        progress("base", 0, 568, T0 + 3),
        progress("base", 16, 568, T0 + 8, 3.2, 172.5),
        progress("base", 568, 568, T0 + 180, 3.2, 0.0),
        make_event("eval", ts=T0 + 181, variant="base", n=568, metrics={"valid": 0.5, "exact": 0.25}),
        progress("kshot", 0, 568, T0 + 182),
        progress("kshot", 142, 568, T0 + 230, 3.1, 137.4),
    ]


# -- the writer side ---------------------------------------------------------------------

def test_reporter_writes_the_start_the_first_answers_then_at_most_every_interval_and_the_end(tmp_path):
    clock = FakeClock()
    with EventWriter(tmp_path / "events.jsonl") as events:
        report = EvalProgressReporter(events, "finetuned", 10, interval_s=2.0, clock=clock)
        report.start()
        for done, at in ((2, 101.0), (4, 102.0), (6, 103.5), (8, 104.0), (10, 104.5)):
            clock.now = at
            report(done)
    got = [(e["done"], e["examples_per_s"], e["eta_s"]) for e in read_events(tmp_path / "events.jsonl")]
    # 4 (1 s after 2) and 8 (0.5 s after 6) fall inside the interval; the first answers and the end never do
    assert got == [(0, None, None), (2, 2.0, 4.0), (6, 1.714, 2.33), (10, 2.222, 0.0)]
    assert all(e["variant"] == "finetuned" and e["total"] == 10 for e in read_events(tmp_path / "events.jsonl"))


def test_interval_comes_from_the_environment_when_it_holds_a_number(monkeypatch):
    monkeypatch.setenv(PROGRESS_INTERVAL_ENV, "0")
    assert progress_interval_s() == 0.0
    monkeypatch.setenv(PROGRESS_INTERVAL_ENV, "soon")
    assert progress_interval_s() == 2.0
    EvalProgressReporter(None, "base", 3)(1)  # no writer (an eval without events): nothing to do


# -- the readers -------------------------------------------------------------------------

def test_summary_has_the_current_variants_progress_only_while_evaluating():
    run = make_run()
    run.write_status("evaluating", message="evaluating base, kshot, finetuned")
    info = run.summary(evaluating_events())
    assert info["eval_progress"] == {"variant": "kshot", "done": 142, "total": 568, "examples_per_s": 3.1,
                                     "eta_s": 137.4}
    assert info["step"] == info["total_steps"] == 10  # the same fold still gives the training figures
    # the variant's result ends its progress: nothing until the next variant reports
    done = evaluating_events() + [make_event("eval", ts=T0 + 400, variant="kshot", n=568, metrics={})]
    assert run.summary(done)["eval_progress"] is None
    # a run that ended (here: stopped half-way through k-shot) reports no progress
    stopped = evaluating_events() + [make_event("status", ts=T0 + 240, state="cancelled", message="stopped")]
    run.write_status("cancelled", message="stopped during evaluation")
    assert run.summary(stopped)["eval_progress"] is None
    assert run.summary(evaluating_events())["eval_progress"] is None  # status.json says it is not evaluating


def test_show_prints_the_progress_line_and_json_carries_it():
    run = make_run()
    with EventWriter(run.events_path) as events:
        for e in evaluating_events():
            events.write(e["type"], **{k: v for k, v in e.items() if k not in ("v", "type")})
    (run.dir / "eval" / "base").mkdir(parents=True)
    write_json_atomic(run.dir / "eval" / "base" / "metrics.json", {"n": 568, "metrics": {"valid": 0.5, "exact": 0.25}})
    run.write_status("evaluating", message="evaluating base, kshot, finetuned")  # this live pid: not lost
    res = run_cli("show", run.id)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-2:] == ["eval base: valid 50.0%, exact 25.0%",
                                            "eval kshot 142/568 (25%), 3.1 examples/s, ETA 2m 17s"]
    assert "{" not in res.stdout
    info = json.loads(run_cli("show", run.id, "--json").stdout)
    assert info["status"] == "evaluating" and info["eval_progress"]["done"] == 142


def test_progress_line_reads_slow_rates_and_leaves_out_what_is_not_known():
    assert eval_progress_line(progress("finetuned", 120, 568, T0, 3.14, 155.0)) == \
        "eval finetuned 120/568 (21%), 3.1 examples/s, ETA 2m 35s"
    assert eval_progress_line(progress("base", 0, 568, T0)) == "eval base 0/568 (0%)"
    assert eval_progress_line(progress("base", 2, 568, T0, 0.0423, 13380.0)) == \
        "eval base 2/568 (0%), 0.042 examples/s, ETA 3h 43m"
    assert eval_progress_line(progress("base", 568, 568, T0, 3.2, 0.0)) == "eval base 568/568 (100%), 3.2 examples/s"


def test_a_late_reader_gets_one_progress_line_per_read_not_the_whole_history():
    events = evaluating_events()
    kept = latest_progress_only(events)
    assert [(e["type"], e.get("variant"), e.get("done")) for e in kept if e["type"].startswith("eval")] == [
        ("eval", "base", None), ("eval_progress", "kshot", 142)]
    assert len(kept) == len(events) - 4  # only progress events were dropped
    assert latest_progress_only(events[:4]) == events[:4]  # one progress event: kept


def test_follow_prints_progress_lines_as_they_come(monkeypatch):
    run = make_run()
    run.write_status("evaluating", message="evaluating base")
    batches = [
        [progress("base", 0, 6, T0), progress("base", 2, 6, T0 + 1, 2.0, 2.0)],
        [progress("base", 4, 6, T0 + 2, 2.0, 1.0)],
        [progress("base", 6, 6, T0 + 3, 2.0, 0.0),
         make_event("eval", ts=T0 + 3, variant="base", n=6, metrics={"valid": 1.0})],
    ]
    out = io.StringIO()

    def next_batch(_seconds: float) -> None:  # the runner writes between two polls
        with EventWriter(run.events_path) as events:
            for e in batches.pop(0):
                events.write(e["type"], **{k: v for k, v in e.items() if k not in ("v", "type")})
        if not batches:
            run.write_status("succeeded", message="done")

    next_batch(0)
    assert follow(run, out=out, sleep=next_batch) == "succeeded"
    assert out.getvalue().splitlines() == [
        "eval base 2/6 (33%), 2.0 examples/s, ETA 2s",
        "eval base 4/6 (67%), 2.0 examples/s, ETA 1s",
        "eval base (n=6): valid 100.0%",
    ]


# -- the real thing ----------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_a_real_run_reports_eval_progress_and_shows_sane_when_finished(tmp_path, tiny_model):
    res = run_cli("train", "--data", str(toy_data(tmp_path)), "--task", "text", "--model", str(tiny_model),
                  "--detach", "--json", "--max-steps", "2", "--set", "batch_size=4",
                  "--set", "split.test=6", "--set", "split.val=2", "--set", "eval.batch_size=2",
                  "--set", "eval.max_new_tokens=4", "--set", "eval.k=1",
                  env={PROGRESS_INTERVAL_ENV: "0"})  # every batch reports: several events, no waiting
    assert res.returncode == 0, res.stderr
    run = Run(Path(json.loads(res.stdout)["dir"]))
    assert wait_for(run, timeout=240) == "succeeded", (run.dir / "runner.log").read_text()[-3000:]
    events = read_events(run.events_path)
    # Base and k-shot decode together (12 prompts, 2 at a time): base reports its share of each
    # batch, and k-shot's answers are all there when its turn comes.
    done = {"base": [0, 1, 2, 3, 4, 5, 6], "kshot": [0, 6], "finetuned": [0, 2, 4, 6]}
    for variant in ("base", "kshot", "finetuned"):
        mine = [e for e in events if e["type"] == "eval_progress" and e["variant"] == variant]
        assert [e["done"] for e in mine] == done[variant] and {e["total"] for e in mine} == {6}
        assert mine[0]["eta_s"] is None and all(e["examples_per_s"] > 0 for e in mine[1:])
        etas = [e["eta_s"] for e in mine[1:]]
        assert all(eta >= 0 for eta in etas) and etas[-1] == 0.0, etas  # to nothing left
        assert variant == "kshot" or etas[0] > 0  # it moves
        result = next(i for i, e in enumerate(events) if e["type"] == "eval" and e["variant"] == variant)
        assert events.index(mine[-1]) < result  # progress comes before the variant's result
    show = run_cli("show", run.id, "--json")
    assert show.returncode == 0, show.stderr
    info = json.loads(show.stdout)
    assert info["status"] == "succeeded" and info["eval_progress"] is None
    assert info["step"] == info["total_steps"] == 2 and info["duration_s"] > 0
    assert set(info["eval"]) == {"base", "kshot", "finetuned"}
    # a text task without valid_regex has no validity rule, so no valid rate
    assert all(set(m) == {"exact", "normalized"} and 0.0 <= m["exact"] <= 1.0 for m in info["eval"].values())
    text = run_cli("show", run.id).stdout
    assert re.search(r"^status\s+succeeded$", text, re.M) and "eval_progress" not in text
