"""`ftui score` as a user runs it: a JSONL of predictions in, rates out, bad files named."""

from __future__ import annotations

import csv
import json

import pytest

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
    assert "line 2: not valid JSON" in res.stderr and "line 3: field 'prediction' missing" in res.stderr
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


# --- published predictions: one per line, against the held-out split ---------------------

# Shaped like the public spider_create_context_val.json (samlhuillier/sql-create-context-spider-
# intersect): a JSON list of {"answer", "question", "context"} from Spider dev.
SPIDER_VAL = [
    {"answer": "SELECT COUNT(*) FROM singer", "question": "How many singers do we have?",
     "context": "CREATE TABLE singer (Id VARCHAR)"},
    {"answer": 'SELECT AVG(age), MIN(age), MAX(age) FROM singer WHERE country = "France"',
     "question": "What is the average, minimum, and maximum age of all singers from France?",
     "context": "CREATE TABLE singer (age INTEGER, country VARCHAR)"},
    {"answer": "SELECT song_name, song_release_year FROM singer ORDER BY age LIMIT 1",
     "question": "Show the name and the release year of the song by the youngest singer.",
     "context": "CREATE TABLE singer (song_name VARCHAR, song_release_year VARCHAR, age VARCHAR)"},
    {"answer": "SELECT COUNT(*) FROM pets WHERE weight > 10",
     "question": "Find the number of pets whose weight is heavier than 10.",
     "context": "CREATE TABLE pets (weight INTEGER)"},
    {"answer": "SELECT COUNT(*) FROM CONTINENTS", "question": "How many continents are there?",
     "context": "CREATE TABLE CONTINENTS (Id VARCHAR)"},
    {"answer": "SELECT name FROM stadium WHERE NOT stadium_id IN (SELECT stadium_id FROM concert)",
     "question": "What are the names of the stadiums without any concerts?",
     "context": "CREATE TABLE stadium (name VARCHAR, stadium_id VARCHAR); "
                "CREATE TABLE concert (stadium_id VARCHAR)"},
]
PREDICTED_SQL = [
    "SELECT count(*) FROM singer",  # exact
    "SELECT avg(age), min(age), max(age) FROM singer WHERE 'France' = country",  # same results
    "SELECT song_name FROM singer ORDER BY age LIMIT 1",  # runs, wrong columns
    "SELECT COUNT(*) FROM pets WHERE weight >",  # does not parse
    "",  # the model said nothing
    "SELECT name FROM stadium WHERE NOT stadium_id IN (SELECT stadium_id FROM concert)",  # exact
]


def _spider_files(folder):
    (folder / "spider_create_context_val.json").write_text(json.dumps(SPIDER_VAL, indent=1))
    (folder / "predicted_sql.txt").write_text("\n".join(PREDICTED_SQL) + "\n")  # a final newline


def test_score_published_sql_lines_as_the_readme_shows(tmp_path):
    _spider_files(tmp_path)
    res = run_cli("score", "--preset", "spider", "--data", "./spider_create_context_val.json",
                  "--predictions", "predicted_sql.txt", "--rows", "rows.jsonl", "--show-failures", "5", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "sql: 6 predictions" in res.stdout and "execution" in res.stdout and "50.0%" in res.stdout
    failures = res.stdout[res.stdout.index("first 3 of 3 failing rows:"):].splitlines()
    assert failures[1] == "line 3: valid, but its results differ from the reference's"
    assert failures[2] == "  prediction: SELECT song_name FROM singer ORDER BY age LIMIT 1"
    assert failures[3] == "  reference:  SELECT song_name, song_release_year FROM singer ORDER BY age LIMIT 1"
    assert failures[4].startswith("line 4: ") and "parse" in failures[4]
    assert failures[7].startswith("line 5: ") and failures[8] == "  prediction: (empty)"
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5, 6] and [r["index"] for r in rows] == list(range(6))
    assert [r["output"] for r in rows] == PREDICTED_SQL
    assert [r["reference"] for r in rows] == [x["answer"] for x in SPIDER_VAL]
    assert [(r["valid"], r["exact"], r["execution"]) for r in rows] == [
        (True, True, True), (True, False, True), (True, False, False),
        (False, False, False), (False, False, False), (True, True, True)]
    assert rows[3]["error"] and rows[4]["error"] and rows[0]["error"] is None
    assert rows[1]["fields"] == {"question": SPIDER_VAL[1]["question"], "context": SPIDER_VAL[1]["context"]}
    assert rows[1]["input"] == SPIDER_VAL[1]["question"]

    res = run_cli("score", "--task", "sql", "--data", "spider_create_context_val.json", "--predictions",
                  "predicted_sql.txt", "--rows", "again.jsonl", "--show-failures", "1", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # the JSON document alone: the failing rows went to stderr
    assert out == {"task": "sql", "n": 6, "n_scorable": 6, "rows": "again.jsonl",
                   "metrics": {"valid": 4 / 6, "exact": 2 / 6, "execution": 3 / 6, "execution_strict": 3 / 6}}
    assert res.stderr.startswith("first 1 of 3 failing rows:\nline 3: ")


# GEM/viggo as its authors publish it (test.csv, columns mr and ref); single values hold commas.
VIGGO_TEST = [
    ("inform(name[Max Payne 3], release_year[2012], esrb[M (for Mature)], genres[action-adventure, shooter], "
     "player_perspective[third person], platforms[PlayStation, Xbox, PC], available_on_steam[yes], "
     "has_linux_release[no], has_mac_release[yes])",
     "Max Payne 3 is an M-rated action-adventure shooter from 2012, played in third person on PlayStation, "
     "Xbox and PC. It is on Steam and Mac, but not Linux."),
    ("give_opinion(name[SpellForce 3], rating[poor], genres[real-time strategy, role-playing], "
     "player_perspective[bird view])",
     "I think SpellForce 3 is one of the worst RPG strategy games I've played, bird view and all."),
    ("confirm(name[Falcon 4.0], developer[Spectrum HoloByte, Inc.])",
     "You mean Falcon 4.0, the one developed by Spectrum HoloByte, Inc.?"),
    ("inform(name[Mario Tennis Aces], exp_release_date[June 29, 2018], genres[sport], "
     "player_perspective[third person], platforms[Nintendo Switch])",
     "Mario Tennis Aces, a third-person sports game for the Nintendo Switch, comes out on June 29, 2018."),
    ("request_attribute(player_perspective[])", "What perspective do you prefer to play games from?"),
]
VIGGO_PREDICTED = [
    VIGGO_TEST[0][0].replace("action-adventure, shooter", "shooter, action-adventure")
                    .replace("PlayStation, Xbox, PC", "PC, PlayStation, Xbox"),  # lists: exact
    VIGGO_TEST[1][0],
    "confirm(name[Falcon 4.0], developer[Inc., Spectrum HoloByte])",  # one value, reordered: wrong
    VIGGO_TEST[3][0].replace("June 29, 2018", "2018, June 29"),  # one value, reordered: wrong
    "request_attribute(player_perspective[])",
]


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["mr", "ref"])
        w.writerows(rows)
    return path


def test_score_viggo_lines_against_the_gem_csv(tmp_path):
    test_csv = _write_csv(tmp_path / "test.csv", VIGGO_TEST)
    (tmp_path / "preds.txt").write_text("\n".join(VIGGO_PREDICTED) + "\n\n\n")  # extra blank lines at the end
    res = run_cli("score", "--preset", "viggo", "--data", str(test_csv), "--predictions", str(tmp_path / "preds.txt"),
                  "--field", "text=ref", "--field", "reference=mr", "--json")
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)["metrics"]
    assert m["valid"] == 1.0 and m["exact"] == 3 / 5 and m["function_accuracy"] == 1.0
    # slots: 12 + 5 + 2 + 5 + 1 = 25 in the references; the two reordered values miss one each
    assert m["slot_recall"] == pytest.approx(23 / 25) and m["slot_precision"] == pytest.approx(23 / 25)
    # Without a preset: the loader finds 'mr' by itself, --field names the sentence column.
    res = run_cli("score", "--task", "funcrep", "--data", str(test_csv), "--predictions",
                  str(tmp_path / "preds.txt"), "--field", "text=ref", "--show-failures", "9")
    assert res.returncode == 0, res.stderr
    assert "exact                  60.0%" in res.stdout
    assert "first 2 of 2 failing rows:\nline 3: valid, but not the reference\n" in res.stdout
    assert "  prediction: confirm(name[Falcon 4.0], developer[Inc., Spectrum HoloByte])" in res.stdout
    # A folder of the author's split files: the preset's held-out split is test.csv.
    _write_csv(tmp_path / "train.csv", VIGGO_TEST[:2])
    _write_csv(tmp_path / "validation.csv", VIGGO_TEST[2:3])
    res = run_cli("score", "--preset", "viggo", "--data", str(tmp_path), "--predictions", str(tmp_path / "preds.txt"),
                  "--field", "text=ref", "--field", "reference=mr", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["metrics"]["exact"] == 3 / 5


def test_score_prediction_lines_must_match_the_rows(tmp_path):
    test_csv = _write_csv(tmp_path / "test.csv", VIGGO_TEST)
    preds = tmp_path / "preds.txt"
    argv = ("score", "--task", "funcrep", "--data", str(test_csv), "--predictions", str(preds),
            "--field", "text=ref", "--json")
    preds.write_text("\n".join(VIGGO_PREDICTED[:4]) + "\n")  # one line short
    res = run_cli(*argv)
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stdout == ""
    assert f"{preds}: 4 prediction line(s), but the held-out split {test_csv} has 5 row(s)" in res.stderr
    preds.write_text("\n".join(VIGGO_PREDICTED) + "\nrecommend(name[Max Payne 3])\n")  # one too many
    res = run_cli(*argv)
    assert res.returncode == 2 and "6 prediction line(s)" in res.stderr
    # No final newline works as well as one (tested above); a blank line is an empty prediction.
    preds.write_text("\n".join(VIGGO_PREDICTED))
    res = run_cli(*argv)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["metrics"]["exact"] == 3 / 5
    preds.write_text("\n".join(VIGGO_PREDICTED[:2] + [""] + VIGGO_PREDICTED[3:]) + "\n")
    res = run_cli(*argv)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["metrics"]["valid"] == 4 / 5
    # A final newline ends the last line: an empty last prediction needs a line of its own.
    preds.write_text("\n".join(VIGGO_PREDICTED[:4] + [""]))
    res = run_cli(*argv)
    assert res.returncode == 2 and "if the last prediction is empty" in res.stderr


def test_score_repeated_problems_are_said_once(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"pred": "SELECT 1", "reference": "SELECT 1"}] * 568)
    res = run_cli("score", "--task", "text", str(path))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{path}: 568 bad line(s): field 'prediction' missing or not text on 568 lines (1, 2, 3, 4, 5, ...)" \
        in res.stderr
    assert res.stderr.count("missing") == 1
    # Bad held-out rows too: predictions are matched by position, so they are refused.
    test_csv = _write_csv(tmp_path / "test.csv", [("inform(name[x])", "")] * 3 + [VIGGO_TEST[1]])
    (tmp_path / "preds.txt").write_text("inform(name[x])\n" * 3)
    res = run_cli("score", "--task", "funcrep", "--data", str(test_csv), "--predictions",
                  str(tmp_path / "preds.txt"), "--field", "reference=ref", "--field", "text=mr")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{test_csv}: 3 bad line(s): field 'ref': empty reference on 3 lines (2, 3, 4)" in res.stderr


def test_score_wrong_combinations_exit_2(tmp_path):
    test_csv = _write_csv(tmp_path / "test.csv", VIGGO_TEST)
    jsonl = write_jsonl(tmp_path / "p.jsonl", [{"prediction": "a", "reference": "a"}])
    txt = tmp_path / "preds.txt"
    txt.write_text("a\n")
    cases = [
        (("--task", "text", str(jsonl), "--data", str(test_csv), "--predictions", str(txt)), "not both"),
        (("--task", "text"), "give a predictions FILE"),
        (("--task", "text", "--predictions", str(txt)), "--predictions needs --data"),
        (("--task", "text", "--data", str(test_csv)), "--data needs --predictions"),
        (("--task", "text", str(jsonl), "--field", "input=ref"), "--field maps the columns of --data"),
        (("--task", "funcrep", "--data", str(test_csv), "--predictions", str(txt), "--field", "ref"),
         "expected NAME=COLUMN"),
        (("--task", "funcrep", "--data", str(test_csv), "--predictions", str(txt), "--field", "question=ref"),
         "task 'funcrep' has no field or column of that name"),
        (("--task", "funcrep", "--data", str(tmp_path), "--predictions", str(txt)), "no file for split 'train'"),
        (("--task", "funcrep", "--data", str(test_csv), "--predictions", str(jsonl)), "one prediction per line"),
        (("--task", "text", str(jsonl), "--show-failures", "-1"), "--show-failures"),
        (("--task", "text", str(jsonl), "--rows", str(jsonl)), "that is an input file"),
    ]
    for args, message in cases:
        res = run_cli("score", *args)
        assert res.returncode == 2 and "Traceback" not in res.stderr, (args, res.stderr)
        assert message in res.stderr, (args, res.stderr)


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
