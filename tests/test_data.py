from __future__ import annotations

import json

import pytest

from ftui.core.config import SplitSpec
from ftui.core.data import load_file, split_examples
from ftui.core.datacheck import build_report
from ftui.core.errors import DataError
from ftui.core.prompts import DEFAULT_TEMPLATES, render_messages

from conftest import run_cli, write_jsonl

SQL_ROW = {"question": "How many heads?", "context": "CREATE TABLE head (age INTEGER)",
           "answer": "SELECT COUNT(*) FROM head"}


def bad_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [
        json.dumps(SQL_ROW).encode(),
        b'{"question": "Who?", "context": "CREATE TABLE t (a VARCHAR)", "answer": "SELECT a',  # truncated
        json.dumps({**SQL_ROW, "question": 42}).encode(),  # number where text belongs
        json.dumps({**SQL_ROW, "question": "caf\u00e9"}).encode().replace(b"caf\\u00e9", b"caf\xe9"),
        json.dumps({**SQL_ROW, "answer": "  "}).encode(),  # empty reference
        json.dumps({**SQL_ROW, "question": "Another?"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_every_problem_is_named_with_its_line(tmp_path):
    loaded = load_file(bad_file(tmp_path), "sql")
    got = {(i.line, i.field): i.message for i in loaded.issues}
    assert "not valid JSON" in got[(2, None)]
    assert got[(3, "question")].startswith("must be text, got a number (42)")
    assert got[(4, None)].startswith("not UTF-8: byte 0xe9")
    assert got[(5, "answer")] == "empty reference"
    assert len(loaded.issues) == 4
    assert [e.line for e in loaded.examples] == [1, 6]
    with pytest.raises(DataError, match="4 bad row"):
        loaded.raise_if_bad()


def test_data_check_cli_exits_2_without_traceback(tmp_path):
    path = bad_file(tmp_path)
    res = run_cli("data", "check", str(path), "--task", "sql", "--model", "none")
    assert res.returncode == 2
    assert "Traceback" not in res.stdout + res.stderr
    for needle in ("line 2: not valid JSON", "line 3, field 'question': must be text, got a number",
                   "line 4: not UTF-8", "line 5, field 'answer': empty reference"):
        assert needle in res.stdout
    assert "4 bad row(s)" in res.stderr and str(path) in res.stderr
    js = run_cli("data", "check", str(path), "--task", "sql", "--model", "none", "--json")
    assert js.returncode == 2
    doc = json.loads(js.stdout)
    assert [e["line"] for e in doc["errors"]] == [2, 3, 4, 5] and doc["ok"] is False


def test_missing_file_and_unknown_task_are_bad_input(tmp_path):
    res = run_cli("data", "check", str(tmp_path / "nope.jsonl"), "--model", "none")
    assert res.returncode == 2 and "no such file" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("data", "check", str(bad_file(tmp_path)), "--task", "poetry")
    assert res.returncode == 2 and "unknown task 'poetry'" in res.stderr


def test_chat_format_and_prompt_completion(tmp_path):
    chat = write_jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                      {"role": "assistant", "content": "4"}]},
        {"messages": [{"role": "user", "content": "hi"}]},  # no answer
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}]},
        {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
    ])
    loaded = load_file(chat, "text")
    assert loaded.format == "chat"
    ex = loaded.examples[0]
    assert ex.reference == "4" and ex.fields == {"input": "2+2?"}
    assert [str(i) for i in loaded.issues] == [
        "line 2, field 'messages[0].role': the last turn must be the assistant's answer (the reference)",
        "line 3, field 'messages[1].content': empty reference",
        "line 4, field 'messages[0].role': role must be one of system, developer, user, assistant, tool, got \"robot\"",
    ]
    # k-shot turns go after the system turn, before the question.
    shot = loaded.examples[0]
    msgs = render_messages(ex, DEFAULT_TEMPLATES["text"], shots=[shot])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]

    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "Say hi", "completion": " hi"}])
    loaded = load_file(pairs, "text")
    assert loaded.format == "prompt-completion" and loaded.examples[0].reference == "hi"


def test_csv_parquet_and_field_map(tmp_path):
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("sentence,mr\nI liked it.,give_opinion(rating[good])\nBad row,\n", encoding="utf-8")
    loaded = load_file(csv_path, "funcrep", {"text": "sentence", "reference": "mr"})
    assert loaded.examples[0].fields == {"text": "I liked it."}
    assert [(i.line, i.message) for i in loaded.issues] == [(3, "empty reference")]

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"question": ["q"], "context": ["CREATE TABLE t (a INT)"], "answer": ["SELECT a FROM t"]}),
                   tmp_path / "d.parquet")
    loaded = load_file(tmp_path / "d.parquet", "sql")
    assert loaded.format == "parquet" and loaded.examples[0].reference == "SELECT a FROM t"


def test_split_is_deterministic_and_disjoint(tmp_path):
    rows = [{**SQL_ROW, "question": f"q{i}"} for i in range(100)]
    loaded = load_file(write_jsonl(tmp_path / "d.jsonl", rows), "sql")
    spec = SplitSpec(seed=3, val=0.1, test=20)
    a, b = split_examples(loaded.examples, spec), split_examples(loaded.examples, spec)
    assert {k: len(v) for k, v in a.items()} == {"train": 70, "val": 10, "test": 20}
    assert a == b
    seen = [e.line for part in a.values() for e in part]
    assert sorted(seen) == list(range(1, 101))
    other = split_examples(loaded.examples, SplitSpec(seed=4, val=0.1, test=20))
    assert other["test"] != a["test"]


def test_report_counts_duplicates_and_long_examples(tmp_path):
    rows = [SQL_ROW, SQL_ROW, {**SQL_ROW, "answer": "SELECT 1"}, {**SQL_ROW, "question": "x" * 400}]
    loaded = load_file(write_jsonl(tmp_path / "d.jsonl", rows), "sql")

    def count(conversations):  # a stand-in tokenizer: one token per 4 characters
        return [sum(len(m["content"]) for m in c) // 4 for c in conversations]

    report = build_report(loaded, task="sql", template=DEFAULT_TEMPLATES["sql"], split=SplitSpec(val=1, test=1),
                          max_length=100, count_tokens=count, tokenizer_name="quarter")
    assert [(d.line, d.first) for d in report.duplicates] == [(2, 1), (3, 1)] and report.conflicting == 1
    assert report.too_long == [4]
    assert report.tokens["max"] > 100 and report.split == {"train": 2, "val": 1, "test": 1}
    assert report.ok


def test_hub_loader_uses_datasets_and_fails_in_one_line(tmp_path, monkeypatch):
    from ftui.core.data import load_hub
    from ftui.core.errors import OfflineError

    folder = tmp_path / "my-dataset"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [SQL_ROW, {**SQL_ROW, "question": "Oldest?"}])
    loaded = load_hub(str(folder), "sql", None)  # datasets reads a local folder like a hub id
    assert loaded.format == "hub" and [e.fields["question"] for e in loaded.examples] == ["How many heads?", "Oldest?"]
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    with pytest.raises(OfflineError, match="cannot be reached"):
        load_hub("b-mc2/sql-create-context", "sql", None)


def test_data_check_says_what_memory_training_would_need_with_the_method():
    """The local backend's memory estimate follows --set method= (full fine-tuning pays
    training state on every weight) and is in --json as `memory`."""
    lora = run_cli("data", "check", "--preset", "demo", "--model", "none", "--set", "method=lora")
    full = run_cli("data", "check", "--preset", "demo", "--model", "none")  # the demo's own method
    assert lora.returncode == full.returncode == 0, lora.stderr + full.stderr
    assert "memory (lora, 1.84M trainable" in lora.stdout and "adapter state" in lora.stdout
    assert "memory (full, 135M trainable" in full.stdout and "weights + gradients + Adam 2.00 GiB" in full.stdout
    js = json.loads(run_cli("data", "check", "--preset", "demo", "--model", "none", "--set", "method=ia3",
                            "--json").stdout)
    assert js["memory"]["method"] == "ia3" and js["memory"]["trainable_params"] == 57_600
    assert js["memory"]["total_bytes"] > 0
