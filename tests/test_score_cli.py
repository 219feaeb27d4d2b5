"""`ftui score` as a user runs it: a JSONL of predictions in, rates out, bad files named."""

from __future__ import annotations

import json

from conftest import run_cli, write_jsonl

EMOTIONS_OK = '[{"text": "Thanks!", "emotion": "gratitude"}]'


def test_score_funcrep_with_preset(tmp_path):
    ref = "inform(name[Portal 2], rating[excellent], genres[puzzle, platformer])"
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prediction": "inform(genres[platformer, puzzle], name[Portal 2], rating[excellent])", "reference": ref},
        {"prediction": "inform(name[Portal 2], price[cheap])", "reference": ref},
        {"prediction": "I don't know", "reference": ref},
        {"prediction": "inform(name[Portal 2], rating[excellent])", "reference": ref},
    ])
    res = run_cli("score", "--preset", "viggo", str(path), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["task"] == "funcrep" and out["n"] == 4
    m = out["metrics"]
    assert m["valid"] == 0.5 and m["exact"] == 0.25 and m["function_accuracy"] == 0.75
    # slots: ref has 4 each time; tp 4+1+0+2 = 7, fp 0+1+0+0 = 1, fn 0+3+4+2 = 9
    assert abs(m["slot_precision"] - 7 / 8) < 1e-9 and abs(m["slot_recall"] - 7 / 16) < 1e-9


def test_score_json_with_preset(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prediction": EMOTIONS_OK, "reference": EMOTIONS_OK},
        {"prediction": '[{"text": "Thanks!", "emotion": "happy"}]', "reference": EMOTIONS_OK},
        {"prediction": '[{"text": "Thanks!", "emo', "reference": EMOTIONS_OK},
    ])
    out = json.loads(run_cli("score", "--preset", "json-emotions", str(path), "--json").stdout)
    assert out["metrics"]["parses"] == 2 / 3 and out["metrics"]["schema_valid"] == 1 / 3
    assert out["metrics"]["valid"] == 1 / 3 and out["metrics"]["exact"] == 1 / 3


def test_score_bad_file_exits_2_naming_lines(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prediction": "a", "reference": "a"},
        '{"prediction": "a", "refer',
        {"prediction": 5, "reference": "a"},
    ])
    res = run_cli("score", "--task", "text", str(path))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "line 2: not valid JSON" in res.stderr and "line 3: field(s) 'prediction'" in res.stderr
    res = run_cli("score", "--task", "sql", str(write_jsonl(tmp_path / "q.jsonl", [{"prediction": "SELECT 1", "reference": "SELECT 1"}])))
    assert res.returncode == 2 and "'context'" in res.stderr
    res = run_cli("score", "--preset", "nope", str(path))
    assert res.returncode == 2 and "no preset named 'nope'" in res.stderr


CTX = "CREATE TABLE table_name_7 (player VARCHAR, college VARCHAR, pick INTEGER)"
GOLD = 'SELECT player FROM table_name_7 WHERE college = "duke" AND pick > 10'
HOSTILE = [
    "ATTACH DATABASE 'attached.db' AS x",
    "PRAGMA table_info(table_name_7)",
    "INSERT INTO table_name_7 VALUES ('a', 'b', 1)",
    "DROP TABLE table_name_7",
    "SELECT load_extension('./evil')",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
    "SELECT * FROM table_name_7 a, table_name_7 b, table_name_7 c, table_name_7 d, table_name_7 e, table_name_7 f",
    "VACUUM INTO 'copy.db'",
]


def test_score_sql_hand_checked_and_hostile(tmp_path):
    rows = [
        # equivalent, written differently: execution match, not exact
        {"prediction": "select player from table_name_7 where 10 < pick and college = 'duke'"},
        # same text up to case, whitespace and quote style: exact
        {"prediction": "SELECT  player FROM table_name_7 WHERE college = 'duke' AND pick > 10"},
        # a different literal, a different column: valid but wrong
        {"prediction": 'SELECT player FROM table_name_7 WHERE college = "rice" AND pick > 10'},
        {"prediction": 'SELECT college FROM table_name_7 WHERE college = "duke" AND pick > 10'},
    ] + [{"prediction": h} for h in HOSTILE]
    path = write_jsonl(tmp_path / "p.jsonl", [{**r, "reference": GOLD, "context": CTX} for r in rows])
    work = tmp_path / "cwd"
    work.mkdir()
    res = run_cli("score", "--task", "sql", str(path), "--json", cwd=work)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["n"] == out["n_scorable"] == 12
    assert out["metrics"] == {
        "valid": 4 / 12, "exact": 1 / 12, "execution": 2 / 12, "execution_strict": 2 / 12,
    }
    assert list(work.iterdir()) == []  # nothing written by ATTACH / VACUUM INTO


def test_score_sql_leaves_references_that_cannot_run_out_of_the_rates(tmp_path):
    rows = [
        {"prediction": "SELECT player FROM table_name_7 WHERE college = 'duke' AND pick > 10",
         "reference": GOLD},
        # the columns in another order: execution, not execution_strict
        {"prediction": "SELECT pick, player FROM table_name_7 WHERE college = 'duke'",
         "reference": 'SELECT player, pick FROM table_name_7 WHERE college = "duke"'},
        {"prediction": "SELECT player FROM table_name_7", "reference": GOLD},
        # the gold names a column the context lacks: the dataset's fault, not the model's
        {"prediction": "SELECT player FROM table_name_7",
         "reference": "SELECT player FROM table_name_7 WHERE round = 2"},
    ]
    path = write_jsonl(tmp_path / "p.jsonl", [{**r, "context": CTX} for r in rows])
    out = json.loads(run_cli("score", "--task", "sql", str(path), "--json").stdout)
    assert (out["n"], out["n_scorable"]) == (4, 3)
    assert out["metrics"] == {
        "valid": 4 / 4, "exact": 1 / 3, "execution": 2 / 3, "execution_strict": 1 / 3,
    }
    text = run_cli("score", "--task", "sql", str(path)).stdout
    assert "1 not scored: the reference query cannot run on its context" in text
    assert "execution_strict" in text and "66.7%" in text and "n_scorable" not in text
