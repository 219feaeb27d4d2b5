from __future__ import annotations

import json

import pytest

from ftui.core.events import EventSchemaError, EventTail, EventWriter, make_event, read_events


def test_writer_flushes_each_line_and_tail_reads_incrementally(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.read() == []  # no file yet
    w = EventWriter(path)
    w.write("status", state="running", message="go")
    # Flushed per line: another reader sees it before close.
    assert [e["type"] for e in tail.read()] == ["status"]
    w.write("train", step=1, total_steps=10, epoch=0.1, loss=2.5, lr=1e-4, tokens=100, tokens_per_s=50.0)
    w.write("val", step=1, loss=2.4)
    assert [e["type"] for e in tail.read()] == ["train", "val"]
    assert tail.read() == []
    w.close()


def test_partial_last_line_is_never_misread(tmp_path):
    path = tmp_path / "events.jsonl"
    line = json.dumps(make_event("log", level="info", message="hello")) + "\n"
    half = len(line) // 2
    path.write_text(line + line[:half])
    tail = EventTail(path)
    assert len(tail.read()) == 1  # the half line is held back
    with open(path, "a") as f:
        f.write(line[half:])
    events = tail.read()
    assert len(events) == 1 and events[0]["message"] == "hello"
    assert tail.bad_lines == 0


def test_writer_ends_a_torn_line_left_by_a_killed_runner(tmp_path):
    path = tmp_path / "events.jsonl"
    good = json.dumps(make_event("log", level="info", message="a")) + "\n"
    path.write_text(good + '{"v":1,"ts":1,"type":"tra')  # killed mid-write
    with EventWriter(path) as w:
        w.write("status", state="running")
    events = read_events(path)
    assert [e["type"] for e in events] == ["log", "status"]


def test_damaged_lines_are_counted_and_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    ok = json.dumps(make_event("error", message="boom"))
    path.write_text("not json\n" + ok + "\n" + '{"v":1,"ts":1,"type":"train","step":"x"}\n')
    tail = EventTail(path)
    assert [e["type"] for e in tail.read()] == ["error"]
    assert tail.bad_lines == 2


@pytest.mark.parametrize("kind,fields", [
    ("status", {"state": "exploded"}),
    ("train", {"step": 1}),
    ("nope", {}),
    ("cost", {"usd": "1", "basis": "x"}),
    ("train", {"step": True, "total_steps": 1, "epoch": 0, "loss": 1, "lr": 1, "tokens": 1, "tokens_per_s": 1}),
    ("eval_progress", {"variant": "base", "done": 3, "total": 10, "examples_per_s": 1.5}),  # eta_s missing
    ("eval_progress", {"variant": "base", "done": 3.0, "total": 10, "examples_per_s": 1.5, "eta_s": 4.7}),
    ("eval_progress", {"variant": "base", "done": 11, "total": 10, "examples_per_s": 1.5, "eta_s": 0}),
    ("eval_progress", {"variant": "base", "done": -1, "total": 10, "examples_per_s": None, "eta_s": None}),
])
def test_schema_rejects_bad_events(kind, fields):
    with pytest.raises(EventSchemaError):
        make_event(kind, **fields)


def test_reopen_follows_a_rewritten_file(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.write("log", level="info", message="before")
    tmp = tmp_path / "new"
    tmp.write_text(path.read_text())
    tmp.replace(path)  # what a resume's rewrite does
    w.reopen()
    w.write("log", level="info", message="after")
    w.close()
    assert [e["message"] for e in read_events(path)] == ["before", "after"]


def test_eval_progress_round_trips_with_null_rate_before_the_first_answer(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        w.write("eval_progress", variant="kshot", done=0, total=568, examples_per_s=None, eta_s=None)
        w.write("eval_progress", variant="kshot", done=120, total=568, examples_per_s=3.1, eta_s=144.5)
    events = read_events(path)
    assert [(e["done"], e["examples_per_s"], e["eta_s"]) for e in events] == [(0, None, None), (120, 3.1, 144.5)]
    assert {e["variant"] for e in events} == {"kshot"}
