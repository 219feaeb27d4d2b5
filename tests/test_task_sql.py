"""The sql task: validity, exact match and execution match, and its sandbox."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from ftui.core.errors import ConfigError
from ftui.core.tasks import Score, make_task
from ftui.core.tasks.sql import SqlTask, context_from_text

PLAYERS = "CREATE TABLE table_name_12 (name VARCHAR, team VARCHAR, age INTEGER, points VARCHAR)"
HEADS = (
    "CREATE TABLE head (head_id VARCHAR, name VARCHAR, born_state VARCHAR, age INTEGER); "
    "CREATE TABLE management (department_id VARCHAR, head_id VARCHAR, "
    "temporary_acting VARCHAR)"
)
SINGERS = "CREATE TABLE singer (name VARCHAR, country VARCHAR, age INTEGER)"
RACES = "CREATE TABLE table_name_21 (points VARCHAR, year VARCHAR, entrant VARCHAR)"
ROSTER = "CREATE TABLE table_name_50 (player VARCHAR, position VARCHAR, school_club_team VARCHAR)"


@pytest.fixture(scope="module")
def task() -> SqlTask:
    return SqlTask()


def judge(task: SqlTask, prediction: str, gold: str, context: str) -> Score:
    return task.score(prediction, gold, {"context": context})


def verdict(score: Score) -> tuple[bool, bool, bool | None]:
    return score.valid, score.exact, score.execution


def test_this_sqlite_reads_unknown_double_quoted_names_as_strings() -> None:
    # The datasets' gold queries depend on it (DQS, on by default); see sql_sandbox.py.
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a VARCHAR, b VARCHAR)")
    conn.execute("INSERT INTO t VALUES ('x', 'y')")
    assert conn.execute('SELECT COUNT(*) FROM t WHERE a = "x"').fetchone() == (1,)
    assert conn.execute('SELECT COUNT(*) FROM t WHERE a = "b"').fetchone() == (0,)


@pytest.mark.parametrize(
    ("gold", "prediction"),
    [
        (
            'SELECT COUNT(*) FROM table_name_12 WHERE team = "Raptors"',
            "SELECT COUNT(1) FROM table_name_12 WHERE team = 'Raptors'",
        ),
        (
            'SELECT name FROM table_name_12 WHERE age > 25 AND team = "Raptors"',
            "SELECT name FROM table_name_12 WHERE team = 'Raptors' AND 25 < age",
        ),
        (
            'SELECT name FROM table_name_12 WHERE team IN ("Raptors", "Lakers")',
            "SELECT name FROM table_name_12 WHERE team = 'Lakers' OR team = 'Raptors'",
        ),
        (
            "SELECT COUNT(*) FROM table_name_12 WHERE age BETWEEN 20 AND 30",
            "SELECT COUNT(*) FROM table_name_12 WHERE age >= 20 AND age <= 30",
        ),
        (  # LIKE ignores ASCII case; exact match keeps the literal's case
            'SELECT name FROM table_name_12 WHERE name LIKE "%Ross%"',
            "SELECT name FROM table_name_12 WHERE name LIKE '%ross%'",
        ),
    ],
)
def test_equivalent_queries_match_on_execution_but_not_exactly(
    task: SqlTask, gold: str, prediction: str
) -> None:
    score = judge(task, prediction, gold, PLAYERS)
    assert verdict(score) == (True, False, True)


def test_ties_at_the_top_tell_limit_1_from_equals_max(task: SqlTask) -> None:
    # One database has ties in sorted columns: LIMIT 1 gives one row, = MAX(...) all tied.
    gold = "SELECT name FROM table_name_12 ORDER BY age DESC LIMIT 1"
    prediction = "SELECT name FROM table_name_12 WHERE age = (SELECT MAX(age) FROM table_name_12)"
    assert judge(task, prediction, gold, PLAYERS).execution is False
    assert judge(task, gold, gold, PLAYERS).execution is True


def test_join_with_aliases_matches_the_same_join_written_without(task: SqlTask) -> None:
    gold = (
        "SELECT T1.name FROM head AS T1 JOIN management AS T2 ON T1.head_id = T2.head_id "
        "WHERE T2.temporary_acting = 'Yes'"
    )
    same = (
        "SELECT head.name FROM head, management WHERE management.head_id = head.head_id "
        'AND management.temporary_acting = "Yes"'
    )
    other_side = (
        "SELECT T1.name FROM head AS T1 JOIN management AS T2 ON T1.head_id = T2.head_id "
        "WHERE T2.temporary_acting = 'No'"
    )
    no_join = "SELECT name FROM head"
    assert judge(task, same, gold, HEADS).execution is True
    assert judge(task, other_side, gold, HEADS).execution is False
    assert judge(task, no_join, gold, HEADS).execution is False


@pytest.mark.parametrize(
    ("gold", "prediction"),
    [
        (
            'SELECT COUNT(*) FROM t WHERE a = "x"',
            "select count(*) from t where a='x' ",
        ),
        (
            "SELECT name FROM head WHERE age > 56",
            "select   NAME\nfrom HEAD\twhere AGE>56",
        ),
        (  # a double-quoted column name is a name, not a string
            'SELECT "name" FROM head WHERE born_state = "Alabama"',
            "SELECT name FROM head WHERE BORN_STATE = 'Alabama'",
        ),
        (
            "SELECT born_state FROM head WHERE name = 'O''Neil'",
            'SELECT born_state FROM head WHERE name = "O\'Neil"',
        ),
        ("SELECT COUNT(*) FROM head", "```sql\nSELECT count(*) FROM head;\n```"),
    ],
)
def test_exact_match_ignores_case_whitespace_and_quote_style(
    task: SqlTask, gold: str, prediction: str
) -> None:
    context = HEADS + "; CREATE TABLE t (a VARCHAR)"
    score = judge(task, prediction, gold, context)
    assert (score.valid, score.exact, score.execution) == (True, True, True)


@pytest.mark.parametrize(
    ("gold", "prediction"),
    [
        # string contents keep their case
        (
            "SELECT name FROM head WHERE born_state = 'Alabama'",
            "SELECT name FROM head WHERE born_state = 'alabama'",
        ),
        # "age" names a column here: a = "age" compares columns, a = 'age' a string
        ('SELECT name FROM head WHERE name = "age"', "SELECT name FROM head WHERE name = 'age'"),
        ("SELECT name FROM head WHERE age > 56", "SELECT name FROM head WHERE age >= 56"),
    ],
)
def test_exact_match_tells_different_queries_apart(
    task: SqlTask, gold: str, prediction: str
) -> None:
    assert judge(task, prediction, gold, HEADS).exact is False


CHANGED_LITERAL_OR_COLUMN = [
    (
        ROSTER,
        'SELECT player FROM table_name_50 WHERE position = "guard" AND school_club_team = "Duke"',
        [
            "SELECT player FROM table_name_50 WHERE position = 'forward' "
            "AND school_club_team = 'Duke'",
            "SELECT player FROM table_name_50 WHERE position = 'guard' "
            "AND school_club_team = 'UCLA'",
            "SELECT position FROM table_name_50 WHERE position = 'guard' "
            "AND school_club_team = 'Duke'",
            "SELECT player FROM table_name_50 WHERE position = 'guard'",
        ],
    ),
    (  # numbers compared with a VARCHAR column (SQLite compares as text there)
        RACES,
        'SELECT COUNT(points) FROM table_name_21 WHERE year > 1990 AND entrant = "Lotus"',
        [
            "SELECT COUNT(points) FROM table_name_21 WHERE year > 1991 AND entrant = 'Lotus'",
            "SELECT COUNT(points) FROM table_name_21 WHERE year >= 1990 AND entrant = 'Lotus'",
            "SELECT COUNT(points) FROM table_name_21 WHERE year < 1990 AND entrant = 'Lotus'",
            "SELECT COUNT(points) FROM table_name_21 WHERE points > 1990 AND entrant = 'Lotus'",
        ],
    ),
    (
        HEADS,
        "SELECT T1.name FROM head AS T1 JOIN management AS T2 ON T1.head_id = T2.head_id "
        "WHERE T2.temporary_acting = 'Yes' AND T1.age > 50",
        [
            "SELECT T1.name FROM head AS T1 JOIN management AS T2 ON "
            "T1.head_id = T2.head_id WHERE T2.temporary_acting = 'Yes' AND T1.age > 60",
            "SELECT T1.born_state FROM head AS T1 JOIN management AS T2 ON "
            "T1.head_id = T2.head_id WHERE T2.temporary_acting = 'Yes' AND T1.age > 50",
        ],
    ),
    (
        SINGERS,
        'SELECT name FROM singer WHERE country IN ("France", "Spain") AND age BETWEEN 20 AND 30',
        [
            "SELECT name FROM singer WHERE country IN ('France') AND age BETWEEN 20 AND 30",
            "SELECT name FROM singer WHERE country IN ('France', 'Spain') "
            "AND age BETWEEN 21 AND 30",
        ],
    ),
    (
        SINGERS,
        'SELECT COUNT(*) FROM singer WHERE name LIKE "%Al%"',
        [
            "SELECT COUNT(*) FROM singer WHERE name LIKE 'Al%'",
            "SELECT COUNT(*) FROM singer WHERE country LIKE '%Al%'",
        ],
    ),
]


@pytest.mark.parametrize(("context", "gold", "wrong"), CHANGED_LITERAL_OR_COLUMN)
def test_a_changed_literal_or_column_is_not_an_execution_match(
    task: SqlTask, context: str, gold: str, wrong: list[str]
) -> None:
    assert verdict(judge(task, gold, gold, context)) == (True, True, True)
    for prediction in wrong:
        score = judge(task, prediction, gold, context)
        assert (score.valid, score.execution) == (True, False), prediction


@pytest.mark.parametrize(("context", "gold", "wrong"), CHANGED_LITERAL_OR_COLUMN)
def test_the_gold_selects_some_rows_but_not_all(
    task: SqlTask, context: str, gold: str, wrong: list[str]
) -> None:
    # The gold's SELECT list and FROM with its WHERE made always true / always false.
    select_from, _, _ = gold.partition(" WHERE ")
    everything = judge(task, select_from, gold, context)
    nothing = judge(task, select_from + " WHERE 1 = 0", gold, context)
    assert everything.valid and nothing.valid
    assert everything.execution is False
    assert nothing.execution is False


def test_order_matters_only_when_the_gold_has_order_by(task: SqlTask) -> None:
    ordered = "SELECT name FROM singer ORDER BY age"
    assert judge(task, "SELECT name FROM singer ORDER BY age", ordered, SINGERS).execution
    assert not judge(task, "SELECT name FROM singer ORDER BY age DESC", ordered, SINGERS).execution
    assert not judge(task, "SELECT name FROM singer", ordered, SINGERS).execution
    unordered = "SELECT name FROM singer"
    assert judge(task, "SELECT name FROM singer ORDER BY age DESC", unordered, SINGERS).execution


def test_double_quoted_strings_work_in_gold_and_prediction(task: SqlTask) -> None:
    gold = 'SELECT age FROM table_name_12 WHERE name = "Terrence Ross"'
    for prediction in (gold, "SELECT age FROM table_name_12 WHERE name = 'Terrence Ross'"):
        assert judge(task, prediction, gold, PLAYERS).execution is True
    other = 'SELECT age FROM table_name_12 WHERE name = "Kyle Lowry"'
    assert judge(task, other, gold, PLAYERS).execution is False


def test_a_failing_reference_is_reported_as_unscorable(task: SqlTask) -> None:
    score = judge(task, "SELECT name FROM singer", "SELECT nme FROM singer", SINGERS)
    assert (score.valid, score.execution, score.details) == (True, None, {"scorable": False})
    assert score.error == (
        "reference query cannot run on its context: execution error: no such column: nme"
    )
    hostile_gold = judge(task, "SELECT name FROM singer", "DROP TABLE singer", SINGERS)
    assert hostile_gold.execution is None
    assert hostile_gold.error == (
        "reference query cannot run on its context: not a read-only query: DROP"
    )
    same = judge(task, "SELECT nme FROM singer", "SELECT nme FROM singer", SINGERS)
    assert (same.valid, same.details["scorable"]) == (False, False)
    assert same.error == score.error
    other = judge(task, "SELECT age FROM singers", "SELECT nme FROM singer", SINGERS)
    assert other.error == (
        "reference query cannot run on its context: execution error: no such column: nme; "
        "the output: execution error: no such table: singers"
    )


@pytest.mark.parametrize(
    ("prediction", "error_start"),
    [
        ("I think the answer is 5", "parse error"),
        ("", "empty output"),
        ("   \n ", "empty output"),
        ("SELECT nme FROM singer", "execution error: no such column: nme"),
        ("SELECT name FROM singers", "execution error: no such table: singers"),
    ],
)
def test_garbage_is_invalid_with_a_reason(task: SqlTask, prediction: str, error_start: str) -> None:
    score = judge(task, prediction, "SELECT name FROM singer", SINGERS)
    assert (score.valid, score.exact, score.execution) == (False, False, False)
    assert score.error is not None and score.error.startswith(error_start)


@pytest.mark.parametrize(
    "fenced",
    [
        "```sql\nSELECT name FROM singer WHERE age > 30;\n```",
        "```\nselect name from singer where age > 30\n```",
        "  SELECT name FROM singer WHERE 30 < age ;  ",
    ],
)
def test_fences_and_a_trailing_semicolon_are_stripped(task: SqlTask, fenced: str) -> None:
    score = judge(task, fenced, "SELECT name FROM singer WHERE age > 30", SINGERS)
    assert (score.valid, score.execution) == (True, True)


def test_context_from_text_extracts_create_table_statements() -> None:
    prompt = (
        "You're given this schema:\nCREATE TABLE head (head_id VARCHAR, name VARCHAR,\n"
        "  born_state VARCHAR, age INTEGER) and CREATE TABLE management (department_id "
        "VARCHAR, head_id VARCHAR, temporary_acting VARCHAR);\nWhat's the name of the "
        "oldest head? Answer with SQL."
    )
    assert context_from_text(prompt) == (
        "CREATE TABLE head (head_id VARCHAR, name VARCHAR, born_state VARCHAR, "
        "age INTEGER); CREATE TABLE management (department_id VARCHAR, head_id VARCHAR, "
        "temporary_acting VARCHAR)"
    )
    assert context_from_text("no schema here") == ""
    assert context_from_text("CREATE TABLE cut (a VARCHAR") == ""


def test_the_schema_comes_from_the_prompt_when_there_is_no_context(task: SqlTask) -> None:
    prompt = f"Schema: {SINGERS}. Question: how many singers are from France?"
    gold = 'SELECT COUNT(*) FROM singer WHERE country = "France"'
    score = task.score(
        "SELECT count(*) FROM singer WHERE country = 'France'", gold, {"input": prompt}
    )
    assert verdict(score) == (True, True, True)
    wrong = task.score(
        "SELECT count(*) FROM singer WHERE country = 'Spain'", gold, {"input": prompt}
    )
    assert wrong.execution is False


def test_aggregate_leaves_unscorable_references_out_of_all_rates_but_valid(
    task: SqlTask,
) -> None:
    def scored(valid: bool, exact: bool, execution: bool, strict: bool) -> Score:
        return Score(valid, exact, execution, {"scorable": True, "execution_strict": strict})

    scores = [
        scored(True, True, True, True),
        scored(True, False, True, False),
        scored(True, False, False, False),
        scored(False, False, False, False),
        Score(False, True, None, {"scorable": False}, "reference query cannot run ..."),
    ]
    assert task.aggregate(scores) == {
        "valid": 3 / 5,
        "exact": 1 / 4,
        "execution": 2 / 4,
        "execution_strict": 1 / 4,
    }
    assert tuple(task.aggregate(scores)) == task.metric_keys
    assert task.metric_keys == ("valid", "exact", "execution", "execution_strict")
    assert task.aggregate(scores[-1:]) == {
        "valid": 0.0,
        "exact": 0.0,
        "execution": 0.0,
        "execution_strict": 0.0,
    }


def test_limits_are_enforced_with_user_readable_errors() -> None:
    task = SqlTask(timeout_s=0.2, row_cap=50)
    gold = "SELECT name FROM singer"
    too_many = task.score("SELECT a.name FROM singer a, singer b", gold, {"context": SINGERS})
    assert (too_many.valid, too_many.error) == (False, "more than 50 rows")
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT MAX(x) FROM c"
    timed_out = task.score(endless, gold, {"context": SINGERS})
    assert (timed_out.valid, timed_out.error) == (False, "timed out after 0.2 s")


def test_options_are_checked_and_reachable_through_make_task() -> None:
    assert isinstance(make_task("sql", {"n_databases": 1, "seed": 3}), SqlTask)
    with pytest.raises(ConfigError, match="n_databases"):
        SqlTask(n_databases=0)
    with pytest.raises(ConfigError, match="bad task_options"):
        make_task("sql", {"timeout": 2})


def test_the_databases_repeat_across_processes() -> None:
    # Seeded from sha256 of (seed, context, gold), not the salted hash(): the same data in
    # a fresh process with another hash seed. Reads the built rows through internals.
    code = (
        "from ftui.core.tasks.sql import SqlTask\n"
        "judge = SqlTask()._judge({context!r}, {gold!r})\n"
        "print([d.query('SELECT * FROM singer') for d in judge.databases])\n"
    ).format(context=SINGERS, gold="SELECT name FROM singer WHERE age > 30")
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        ).stdout
        for hash_seed in (1, 2)
    ]
    assert runs[0] == runs[1] and "singer" not in runs[0] and len(runs[0]) > 100


def test_hostile_predictions_are_refused_and_touch_no_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    task = SqlTask(timeout_s=0.25)
    context = "CREATE TABLE t (a VARCHAR, b INTEGER)"
    gold = "SELECT a FROM t WHERE b > 3"
    attached, vacuumed = tmp_path / "attached.db", tmp_path / "vacuumed.db"
    hostile = [
        f"ATTACH DATABASE '{attached}' AS x",
        "ATTACH DATABASE 'relative.db' AS x",
        "PRAGMA table_info(t)",
        "SELECT * FROM pragma_table_info('t')",
        "INSERT INTO t VALUES (1, 2)",
        "DROP TABLE t",
        "SELECT load_extension('x')",
        "SELECT readfile('/etc/passwd')",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT COUNT(*) FROM c",
        "SELECT * FROM t a, t b, t c, t d, t e, t f",
        "SELECT COUNT(*) FROM t a, t b, t c, t d, t e, t f, t g, t h",
        "SELECT 1; DROP TABLE t",
        "SELECT a FROM t WHERE b > 3; DELETE FROM t",
        f"VACUUM INTO '{vacuumed}'",
        "BEGIN",
        "SELECT '" + "x" * 100_000 + "'",
        "SELECT " + "(" * 5000 + "1" + ")" * 5000,
        "SELECT printf('%.*c', 2000000000, 'x')",
        "SELECT zeroblob(2000000000)",
        "WITH RECURSIVE c(x) AS (SELECT 'a' UNION ALL SELECT x || x FROM c) SELECT x FROM c",
    ]
    started = time.monotonic()
    scores = [task.score(prediction, gold, {"context": context}) for prediction in hostile]
    elapsed = time.monotonic() - started
    for prediction, score in zip(hostile, scores):
        assert score.valid is False, prediction[:80]
        assert score.execution is False and score.error, prediction[:80]
    assert elapsed < 10
    assert list(tmp_path.iterdir()) == []
    # The databases the hostile queries ran on (cached) still answer the gold.
    assert task.score(gold, gold, {"context": context}).execution is True


def test_a_hostile_context_builds_only_its_create_table_statements(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    context = (
        f"ATTACH DATABASE '{tmp_path / 'ctx.db'}' AS c; "
        "CREATE TABLE t (a VARCHAR, b INTEGER); "
        "CREATE TABLE u AS SELECT 1 AS x; "
        "CREATE TRIGGER trg AFTER INSERT ON t BEGIN DELETE FROM t; END; "
        "CREATE TABLE v (c VARCHAR CHECK (load_extension('x')), d INTEGER); "
        "CREATE TABLE w (e VARCHAR CHECK (printf('%.*c', 2000000000, 'x') IS NOT NULL)); "
        "DROP TABLE t; PRAGMA writable_schema = 1; VACUUM INTO 'out.db'"
    )
    task = SqlTask()
    gold = "SELECT a FROM t WHERE b > 3"
    assert verdict(task.score(gold, gold, {"context": context})) == (True, True, True)
    others = (
        "SELECT * FROM u",
        "SELECT * FROM v",
        "SELECT * FROM w",
        "SELECT name FROM sqlite_master WHERE type = 'trigger'",
    )
    for other in others:
        score = task.score(other, gold, {"context": context})
        assert score.execution is False
    assert list(tmp_path.iterdir()) == []


def test_scoring_never_raises(task: SqlTask) -> None:
    weird = ["\x00", "\ud800", "```", "'", '"', "SELECT '\x00'", "SELECT x'ff'", ";;;", "("]
    for text in weird:
        for prediction, gold, context in (
            (text, "SELECT 1", SINGERS),
            ("SELECT 1", text, SINGERS),
            ("SELECT 1", "SELECT 1", text),
        ):
            assert isinstance(task.score(prediction, gold, {"context": context}), Score)
