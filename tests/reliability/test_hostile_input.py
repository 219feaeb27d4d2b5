"""Hostile data files and hostile model output.

Data: every file of a corpus of bad datasets gives exit code 2 with a message naming the file
(and the line where there is one), within a time and memory bound, with no traceback, from
both `ftui data check` and `ftui train` (which must not create a run).
Output: SQL that writes, attaches, changes pragmas, loads extensions, recurses forever or
explodes in size, and JSON nested or huge, is scored without touching the filesystem and
within a time limit per example.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftui.core.presets import load_preset
from ftui.core.tasks import make_task

from conftest import ROOT

MEMORY_LIMIT = 1 << 30  # 1 GiB of address space beyond what the interpreter starts with
TIME_LIMIT_S = 30
SQL_ROW = {"question": "How many?", "context": "CREATE TABLE t (a INTEGER)", "answer": "SELECT COUNT(*) FROM t"}


def corpus(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, text the message must contain besides the file name)."""
    folder.mkdir()
    rng = random.Random(7)
    files: dict[str, tuple[Path, str]] = {}

    def add(name: str, content: bytes, needle: str) -> None:
        path = folder / name
        path.write_bytes(content)
        files[name] = (path, needle)

    add("empty.jsonl", b"", "the file is empty")
    add("binary.jsonl", bytes(rng.randrange(256) for _ in range(50_000)), "binary file")
    add("latin1.jsonl", json.dumps(SQL_ROW).replace("How", "Caf\u00e9 how").encode("latin-1") + b"\n",
        "line 1: not UTF-8")
    huge = json.dumps({**SQL_ROW, "question": "x" * (50 * 1024 * 1024)}).encode()
    add("one_50mb_line.jsonl", json.dumps(SQL_ROW).encode() + b"\n" + huge + b"\n", "line 2: 52,4")
    add("nested.jsonl", json.dumps(SQL_ROW).encode() + b"\n" + b"[" * 200_000 + b"]" * 200_000 + b"\n",
        "line 2: JSON nested too deeply")
    add("wrong_types.jsonl", (json.dumps({**SQL_ROW, "question": 5}) + "\n" + json.dumps({**SQL_ROW, "answer": ["x"]})
                              + "\n").encode(), "line 1, field 'question': must be text")
    add("missing_fields.jsonl", (json.dumps(SQL_ROW) + "\n" + json.dumps({"question": "q"}) + "\n").encode(),
        "line 2, field 'context': missing")
    add("not_objects.jsonl", b'["a", "b"]\n42\n', "line 1: expected a JSON object")
    add("ragged.csv", b"question,context,answer\nq,CREATE TABLE t (a INT),SELECT a FROM t,extra\nq2\n",
        "line 2: 4 cells, but the header names 3")
    add("truncated.jsonl", json.dumps(SQL_ROW).encode() + b"\n" + json.dumps(SQL_ROW).encode()[:25] + b"\n",
        "line 2: not valid JSON")
    wrong = folder / "wrong_schema.parquet"
    pq.write_table(pa.Table.from_pylist([{"foo": 1, "bar": [1, 2]}, {"foo": 2, "bar": []}]), wrong)
    files["wrong_schema.parquet"] = (wrong, "no column 'question', 'context', 'answer'")
    add("not_parquet.parquet", b"PAR1" + bytes(rng.randrange(256) for _ in range(2000)), "not a readable Parquet file")
    add("chat_bad_roles.jsonl", json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}).encode() + b"\n",
        "line 1, field 'messages[0].role'")
    return files


def limited() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT + (256 << 20), hard))


def ftui(*args: str, home: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FTUI_HOME": str(home)}
    began = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "ftui", *args], capture_output=True, text=True, env=env,
                         stdin=subprocess.DEVNULL, timeout=TIME_LIMIT_S, preexec_fn=limited)
    return res, time.monotonic() - began


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return corpus(tmp_path_factory.mktemp("hostile") / "files")


CASES = ["empty.jsonl", "binary.jsonl", "latin1.jsonl", "one_50mb_line.jsonl", "nested.jsonl",
         "wrong_types.jsonl", "missing_fields.jsonl", "not_objects.jsonl", "ragged.csv", "truncated.jsonl",
         "wrong_schema.parquet", "not_parquet.parquet", "chat_bad_roles.jsonl"]


@pytest.mark.parametrize("name", CASES)
def test_bad_file_is_refused_by_data_check_and_train(bad_files, name, ftui_home):
    path, needle = bad_files[name]
    for args in (["data", "check", str(path), "--task", "sql", "--model", "none"],
                 ["train", "--data", str(path), "--task", "sql", "--detach"]):
        res, _ = ftui(*args, home=ftui_home)
        said = res.stdout + res.stderr
        assert res.returncode == 2, (args, said[-2000:])
        assert "Traceback" not in said and "MemoryError" not in said
        assert str(path) in said, said[-1000:]
        assert needle in said, said[-2000:]
    assert not (ftui_home / "runs").exists() or not any((ftui_home / "runs").iterdir())


def test_the_corpus_is_what_the_readme_counts(bad_files):
    assert sorted(bad_files) == sorted(CASES)


# -- hostile model output -----------------------------------------------------------------------

HOSTILE_SQL = [
    "INSERT INTO t VALUES (1)", "DELETE FROM t", "DROP TABLE t", "UPDATE t SET a = 1",
    "CREATE TABLE x (a)", "ATTACH DATABASE '{tmp}/evil.db' AS evil", "PRAGMA writable_schema = ON",
    "SELECT load_extension('{tmp}/evil.so')", "VACUUM INTO '{tmp}/copy.db'",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT COUNT(*) FROM r",
    "SELECT COUNT(*) FROM t a, t b, t c, t d, t e, t f, t g, t h",
    "SELECT zeroblob(2000000000)", "SELECT printf('%.*c', 2000000000, 'x')",
    "SELECT a FROM t; DROP TABLE t", "SELECT " + "(" * 5000 + "1" + ")" * 5000,
    "SELECT '" + "x" * 100_000 + "'",
]


def test_hostile_sql_is_invalid_in_memory_and_fast(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = make_task("sql", {})
    before = set(tmp_path.rglob("*"))
    for sql in HOSTILE_SQL:
        sql = sql.replace("{tmp}", str(tmp_path))
        began = time.monotonic()
        s = task.score(sql, SQL_ROW["answer"], {"context": SQL_ROW["context"]})
        assert time.monotonic() - began < 5, sql[:80]
        assert not s.exact and not s.execution, sql[:80]
        if not sql.startswith(("WITH RECURSIVE", "SELECT COUNT(*) FROM t a")):
            assert not s.valid, sql[:80]
    assert set(tmp_path.rglob("*")) == before  # nothing was written anywhere


def test_hostile_json_is_scored_within_a_time_limit():
    p = load_preset("json-emotions")
    task = make_task(p.task, p.task_options)
    ref = '[{"text": "I love it", "emotion": "joy"}]'
    outputs = ["[" * 200_000 + "]" * 200_000, '{"a":' * 100_000 + "1" + "}" * 100_000,
               json.dumps([{"text": "x" * 100, "emotion": "joy"}] * 200_000),
               json.dumps([{"text": "x" * (20 << 20), "emotion": "joy"}]), "\x00" * 1000, "[" + "1," * 1_000_000 + "1]"]
    for out in outputs:
        began = time.monotonic()
        s = task.score(out, ref, {})
        assert time.monotonic() - began < 2, out[:40]
        assert not s.valid and not s.exact and s.error
