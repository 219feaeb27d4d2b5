"""The sql task judges as Spider's test-suite evaluation does (Zhong et al., 2020).

Hand-written Spider-style cases, with contexts written the way sql-create-context writes
them (every column VARCHAR or INTEGER, one CREATE TABLE per use of a table), each with the
verdicts the convention gives: key-equivalent rewrites equal, tie-sensitive rewrites
different, column permutations equal under ``execution`` only, wrong queries wrong, and
references that cannot run on their context left out. Then the same gold-vs-gold check on
a fixture shaped like the public spider_create_context_val.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot

from ftui.core.scoring import count_scorable, score_records
from ftui.core.tasks import Score
from ftui.core.tasks.sql import SqlTask

FIXTURE = Path(__file__).parent / "fixtures" / "spider_dev_sample.json"

SINGER = "CREATE TABLE singer (name VARCHAR, country VARCHAR, age INTEGER, singer_id VARCHAR)"
SINGER_IN_CONCERT = (
    "CREATE TABLE singer_in_concert (singer_id VARCHAR); "
    "CREATE TABLE singer (name VARCHAR, singer_id VARCHAR)"
)
STADIUM_CONCERT = (
    "CREATE TABLE stadium (name VARCHAR, capacity INTEGER, stadium_id VARCHAR); "
    "CREATE TABLE concert (concert_name VARCHAR, stadium_id VARCHAR, year VARCHAR)"
)
PETS = (
    "CREATE TABLE student (fname VARCHAR, age INTEGER, stuid VARCHAR); "
    "CREATE TABLE has_pet (stuid VARCHAR, petid VARCHAR); "
    "CREATE TABLE pets (petid VARCHAR, pettype VARCHAR, weight INTEGER)"
)
PETS_ONLY = "CREATE TABLE pets (petid VARCHAR, pettype VARCHAR, weight INTEGER, pet_age INTEGER)"
COUNTRIES = (
    "CREATE TABLE countries (countryname VARCHAR, countryid VARCHAR); "
    "CREATE TABLE car_makers (country VARCHAR)"
)
FLIGHTS = "CREATE TABLE flights (airline VARCHAR); CREATE TABLE airlines (uid VARCHAR, airline VARCHAR)"
FRIENDS = (
    "CREATE TABLE friend (student_id VARCHAR); CREATE TABLE highschooler (name VARCHAR, id VARCHAR)"
)
FRIENDS_SELF_JOIN = (
    "CREATE TABLE highschooler (id VARCHAR, name VARCHAR); "
    "CREATE TABLE friend (student_id VARCHAR, friend_id VARCHAR); "
    "CREATE TABLE highschooler (name VARCHAR, id VARCHAR)"
)
PARAGRAPHS = "CREATE TABLE paragraphs (document_id VARCHAR, paragraph_id VARCHAR)"
EMPLOYEE = "CREATE TABLE employee (name VARCHAR, age VARCHAR, city VARCHAR)"
EVALUATION = (
    "CREATE TABLE evaluation (employee_id VARCHAR, bonus INTEGER); "
    "CREATE TABLE employee (name VARCHAR, employee_id VARCHAR)"
)
CAR_MAKERS = "CREATE TABLE car_makers (fullname VARCHAR, maker VARCHAR)"
COUNTRY_TWICE = (
    "CREATE TABLE country (name VARCHAR, surfacearea INTEGER, continent VARCHAR); "
    "CREATE TABLE country (surfacearea INTEGER, continent VARCHAR)"
)
SINGER_TWICE = "CREATE TABLE singer (name VARCHAR, age INTEGER); CREATE TABLE singer (age INTEGER)"
STADIUM_CASE = (
    "CREATE TABLE stadium (name VARCHAR, capacity VARCHAR, Stadium_ID VARCHAR, stadium_id VARCHAR); "
    "CREATE TABLE concert (stadium_id VARCHAR, year INTEGER)"
)
ORCHESTRA = "CREATE TABLE conductor (name VARCHAR, conductor_id VARCHAR, age INTEGER)"
CITY = "CREATE TABLE city (name VARCHAR, district VARCHAR, population INTEGER)"

SAME = (True, True)
"""execution, execution_strict"""
PERMUTED = (True, False)
WRONG = (False, False)
UNSCORABLE = (None, None)

CASES = [
    # -- key-equivalent rewrites: equal ----------------------------------------------------
    ("join order", SINGER_IN_CONCERT,
     "SELECT T2.name FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id",
     "SELECT T1.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id",
     SAME),
    ("IN subquery vs join", STADIUM_CONCERT,
     "SELECT concert_name FROM concert WHERE stadium_id IN "
     "(SELECT stadium_id FROM stadium WHERE capacity > 5000)",
     "SELECT T1.concert_name FROM concert AS T1 JOIN stadium AS T2 "
     "ON T1.stadium_id = T2.stadium_id WHERE T2.capacity > 5000",
     SAME),
    ("bare column under GROUP BY id", STADIUM_CONCERT,
     "SELECT T2.name, COUNT(*) FROM concert AS T1 JOIN stadium AS T2 "
     "ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id",
     "SELECT T2.name, COUNT(*) FROM concert AS T1 JOIN stadium AS T2 "
     "ON T1.stadium_id = T2.stadium_id GROUP BY T2.stadium_id",
     SAME),
    ("COUNT(*) vs COUNT(id)", SINGER,
     "SELECT COUNT(*) FROM singer", "SELECT COUNT(singer_id) FROM singer", SAME),
    ("COUNT(DISTINCT key) vs COUNT(*)", STADIUM_CONCERT,
     "SELECT COUNT(*) FROM stadium", "SELECT COUNT(DISTINCT stadium_id) FROM stadium", SAME),
    ("NOT IN vs LEFT JOIN IS NULL", STADIUM_CONCERT,
     "SELECT name FROM stadium WHERE NOT stadium_id IN (SELECT stadium_id FROM concert)",
     "SELECT T1.name FROM stadium AS T1 LEFT JOIN concert AS T2 "
     "ON T1.stadium_id = T2.stadium_id WHERE T2.stadium_id IS NULL",
     SAME),
    ("students without pets", PETS,
     "SELECT COUNT(*) FROM student WHERE NOT stuid IN (SELECT stuid FROM has_pet)",
     "SELECT COUNT(*) FROM student AS T1 LEFT JOIN has_pet AS T2 ON T1.stuid = T2.stuid "
     "WHERE T2.stuid IS NULL",
     SAME),
    ("DISTINCT join vs IN", PETS,
     "SELECT DISTINCT T1.fname FROM student AS T1 JOIN has_pet AS T2 ON T1.stuid = T2.stuid",
     "SELECT DISTINCT fname FROM student WHERE stuid IN (SELECT stuid FROM has_pet)",
     SAME),
    ("three-table join order", PETS,
     "SELECT T1.fname, T1.age FROM student AS T1 JOIN has_pet AS T2 ON T1.stuid = T2.stuid "
     "JOIN pets AS T3 ON T3.petid = T2.petid WHERE T3.pettype = 'dog'",
     "SELECT student.fname, student.age FROM has_pet JOIN pets ON pets.petid = has_pet.petid "
     'JOIN student ON student.stuid = has_pet.stuid WHERE pets.pettype = "dog"',
     SAME),
    ("GROUP BY either side of the join", PETS,
     "SELECT T1.stuid, T1.fname, COUNT(*) FROM student AS T1 JOIN has_pet AS T2 "
     "ON T1.stuid = T2.stuid GROUP BY T1.stuid",
     "SELECT T1.stuid, T1.fname, COUNT(*) FROM student AS T1 JOIN has_pet AS T2 "
     "ON T1.stuid = T2.stuid GROUP BY T2.stuid",
     SAME),
    ("HAVING under GROUP BY key", COUNTRIES,
     "SELECT T1.countryname FROM countries AS T1 JOIN car_makers AS T2 "
     "ON T1.countryid = T2.country GROUP BY T1.countryid HAVING COUNT(*) > 2",
     "SELECT T1.countryname FROM countries AS T1 JOIN car_makers AS T2 "
     "ON T1.countryid = T2.country GROUP BY T2.country HAVING COUNT(*) > 2",
     SAME),
    ("IN on a key named uid", FLIGHTS,
     "SELECT COUNT(*) FROM airlines AS T1 JOIN flights AS T2 ON T2.airline = T1.uid "
     "WHERE T1.airline = 'JetBlue Airways'",
     "SELECT COUNT(*) FROM flights WHERE airline IN "
     '(SELECT uid FROM airlines WHERE airline = "JetBlue Airways")',
     SAME),
    ("GROUP BY id of highschooler", FRIENDS,
     "SELECT T2.name FROM friend AS T1 JOIN highschooler AS T2 ON T1.student_id = T2.id "
     "GROUP BY T1.student_id HAVING COUNT(*) >= 3",
     "SELECT T2.name FROM friend AS T1 JOIN highschooler AS T2 ON T1.student_id = T2.id "
     "GROUP BY T2.id HAVING COUNT(*) >= 3",
     SAME),
    ("COUNT of a key per group", PARAGRAPHS,
     "SELECT document_id, COUNT(*) FROM paragraphs GROUP BY document_id",
     "SELECT document_id, COUNT(paragraph_id) FROM paragraphs GROUP BY document_id",
     SAME),
    ("MAX vs ORDER BY LIMIT 1 on the value itself", SINGER,
     "SELECT MAX(age) FROM singer", "SELECT age FROM singer ORDER BY age DESC LIMIT 1", SAME),
    ("COUNT(*) on conductors", ORCHESTRA,
     "SELECT COUNT(*) FROM conductor", "SELECT COUNT(DISTINCT conductor_id) FROM conductor", SAME),
    # -- ties: LIMIT 1 is not = MAX/MIN ----------------------------------------------------
    ("oldest singer: LIMIT 1 vs = MAX", SINGER,
     "SELECT name FROM singer ORDER BY age DESC LIMIT 1",
     "SELECT name FROM singer WHERE age = (SELECT MAX(age) FROM singer)", WRONG),
    ("smallest stadium: LIMIT 1 vs = MIN", STADIUM_CONCERT,
     "SELECT name FROM stadium ORDER BY capacity LIMIT 1",
     "SELECT name FROM stadium WHERE capacity = (SELECT MIN(capacity) FROM stadium)", WRONG),
    ("= MAX vs LIMIT 1, the other way round", PETS_ONLY,
     "SELECT petid FROM pets WHERE weight = (SELECT MAX(weight) FROM pets)",
     "SELECT petid FROM pets ORDER BY weight DESC LIMIT 1", WRONG),
    ("youngest conductor on a VARCHAR age", EMPLOYEE,
     "SELECT name FROM employee ORDER BY age LIMIT 1",
     "SELECT name FROM employee WHERE age = (SELECT MIN(age) FROM employee)", WRONG),
    # -- column permutations: equal under execution, not under execution_strict ------------
    ("SELECT list reordered", SINGER,
     "SELECT name, country, age FROM singer", "SELECT age, name, country FROM singer", PERMUTED),
    ("count beside the group", SINGER,
     "SELECT country, COUNT(*) FROM singer GROUP BY country",
     "SELECT COUNT(*), country FROM singer GROUP BY country", PERMUTED),
    ("average beside the type", PETS_ONLY,
     "SELECT pettype, AVG(weight) FROM pets GROUP BY pettype",
     "SELECT AVG(weight), pettype FROM pets GROUP BY pettype", PERMUTED),
    ("reordered and sorted", SINGER,
     "SELECT name, age FROM singer ORDER BY age DESC",
     "SELECT age, name FROM singer ORDER BY age DESC", PERMUTED),
    ("a column twice is no permutation", SINGER,
     "SELECT name, country FROM singer", "SELECT name, name FROM singer", WRONG),
    # -- duplicate CREATE TABLEs and case-duplicate columns -------------------------------
    ("subquery on the same table", SINGER_TWICE,
     "SELECT name FROM singer WHERE age > (SELECT AVG(age) FROM singer)",
     "SELECT T1.name FROM singer AS T1 WHERE T1.age > (SELECT AVG(T2.age) FROM singer AS T2)",
     SAME),
    ("column only in the second CREATE TABLE", "CREATE TABLE t (a VARCHAR); CREATE TABLE t (b VARCHAR)",
     "SELECT b FROM t", "SELECT b FROM t", SAME),
    ("subquery with a condition, wrong literal", COUNTRY_TWICE,
     "SELECT name FROM country WHERE surfacearea > "
     "(SELECT MIN(surfacearea) FROM country WHERE continent = 'Europe')",
     "SELECT name FROM country WHERE surfacearea > "
     "(SELECT MIN(surfacearea) FROM country WHERE continent = 'Asia')",
     WRONG),
    ("self-join, join order", FRIENDS_SELF_JOIN,
     "SELECT T3.name FROM friend AS T1 JOIN highschooler AS T2 ON T1.student_id = T2.id "
     "JOIN highschooler AS T3 ON T1.friend_id = T3.id WHERE T2.name = 'Kyle'",
     "SELECT T3.name FROM highschooler AS T2 JOIN friend AS T1 ON T1.student_id = T2.id "
     "JOIN highschooler AS T3 ON T3.id = T1.friend_id WHERE T2.name = \"Kyle\"",
     SAME),
    ("self-join, the two sides swapped", FRIENDS_SELF_JOIN,
     "SELECT T3.name FROM friend AS T1 JOIN highschooler AS T2 ON T1.student_id = T2.id "
     "JOIN highschooler AS T3 ON T1.friend_id = T3.id WHERE T2.name = 'Kyle'",
     "SELECT T2.name FROM friend AS T1 JOIN highschooler AS T2 ON T1.student_id = T2.id "
     "JOIN highschooler AS T3 ON T1.friend_id = T3.id WHERE T3.name = 'Kyle'",
     WRONG),
    ("case-duplicate columns", "CREATE TABLE t (x VARCHAR, X VARCHAR)",
     "SELECT x FROM t", "SELECT x FROM t", SAME),
    ("case-duplicate key, other spelling", STADIUM_CASE,
     "SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
     "WHERE T1.year >= 2014 GROUP BY T2.stadium_id ORDER BY COUNT(*) DESC LIMIT 1",
     "SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.Stadium_ID "
     "WHERE T1.year >= 2014 GROUP BY T2.Stadium_ID ORDER BY COUNT(*) DESC LIMIT 1",
     SAME),
    # -- double-quoted string literals, as the datasets write them ------------------------
    ("double vs single quotes", SINGER,
     'SELECT COUNT(*) FROM singer WHERE country = "France"',
     "SELECT COUNT(*) FROM singer WHERE country = 'France'", SAME),
    ("double-quoted district", CITY,
     'SELECT SUM(population) FROM city WHERE district = "Gelderland"',
     "SELECT SUM(population) FROM city WHERE district = 'Gelderland'", SAME),
    ("double-quoted, another maker", CAR_MAKERS,
     'SELECT fullname FROM car_makers WHERE maker = "volvo"',
     'SELECT fullname FROM car_makers WHERE maker = "ford"', WRONG),
    # -- wrong predictions -----------------------------------------------------------------
    ("wrong column", SINGER,
     "SELECT name FROM singer WHERE age > 30", "SELECT country FROM singer WHERE age > 30", WRONG),
    ("wrong literal", PETS_ONLY,
     'SELECT COUNT(*) FROM pets WHERE pettype = "dog"',
     "SELECT COUNT(*) FROM pets WHERE pettype = 'cat'", WRONG),
    ("missing WHERE", EMPLOYEE,
     "SELECT COUNT(*) FROM employee WHERE city = 'Bristol'", "SELECT COUNT(*) FROM employee",
     WRONG),
    ("> vs >=", PETS_ONLY,
     "SELECT COUNT(*) FROM pets WHERE weight > 10", "SELECT COUNT(*) FROM pets WHERE weight >= 10",
     WRONG),
    ("wrong aggregate", PETS_ONLY,
     "SELECT AVG(pet_age) FROM pets", "SELECT MAX(pet_age) FROM pets", WRONG),
    ("DISTINCT missing", SINGER,
     "SELECT DISTINCT country FROM singer WHERE age > 20",
     "SELECT country FROM singer WHERE age > 20", WRONG),
    ("sort direction", SINGER,
     "SELECT name FROM singer ORDER BY age DESC", "SELECT name FROM singer ORDER BY age", WRONG),
    ("wrong join column", FRIENDS_SELF_JOIN,
     "SELECT COUNT(*) FROM friend AS T1 JOIN highschooler AS T2 ON T1.student_id = T2.id "
     "WHERE T2.name = 'Kyle'",
     "SELECT COUNT(*) FROM friend AS T1 JOIN highschooler AS T2 ON T1.friend_id = T2.id "
     "WHERE T2.name = 'Kyle'",
     WRONG),
    ("JOIN vs IN where the join repeats rows", STADIUM_CONCERT,
     "SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id",
     "SELECT name FROM stadium WHERE stadium_id IN (SELECT stadium_id FROM concert)", WRONG),
    ("group by a non-key", STADIUM_CONCERT,
     "SELECT T2.name, COUNT(*) FROM concert AS T1 JOIN stadium AS T2 "
     "ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id",
     "SELECT T2.name, COUNT(*) FROM concert AS T1 JOIN stadium AS T2 "
     "ON T1.stadium_id = T2.stadium_id GROUP BY T2.name",
     WRONG),
    # -- references that cannot run on their context --------------------------------------
    ("gold names a column the context lacks", "CREATE TABLE singer (name VARCHAR)",
     "SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer", UNSCORABLE),
    ("gold names a table the context lacks", EVALUATION,
     "SELECT T1.name FROM employee AS T1 JOIN hiring AS T2 ON T1.employee_id = T2.employee_id",
     "SELECT name FROM employee", UNSCORABLE),
]


@pytest.fixture(scope="module")
def task() -> SqlTask:
    return SqlTask()


def test_the_table_is_big_and_covers_every_verdict() -> None:
    assert len(CASES) >= 40
    verdicts = [case[-1] for case in CASES]
    for kind in (SAME, PERMUTED, WRONG, UNSCORABLE):
        assert verdicts.count(kind) >= 2


@pytest.mark.parametrize(
    ("context", "gold", "prediction", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_verdicts_follow_the_test_suite_conventions(
    task: SqlTask, context: str, gold: str, prediction: str, expected: tuple
) -> None:
    reference = task.score(gold, gold, {"context": context})
    score = task.score(prediction, gold, {"context": context})
    execution, strict = expected
    if execution is None:
        assert score.details == {"scorable": False} and score.execution is None
        assert score.error is not None
        assert score.error.startswith("reference query cannot run on its context: ")
        assert reference.details["scorable"] is False
        return
    assert (reference.valid, reference.execution) == (True, True)
    assert reference.details == {"scorable": True, "execution_strict": True}
    assert score.valid, score.error
    assert (score.execution, score.details["execution_strict"]) == (execution, strict)


def test_unscorable_rows_are_counted_apart(task: SqlTask) -> None:
    items = [
        (prediction, gold, {"question": name, "context": context})
        for name, context, gold, prediction, _ in CASES
    ]
    records, metrics = score_records(task, items)
    unscorable = sum(1 for case in CASES if case[-1] == UNSCORABLE)
    assert count_scorable(records) == len(CASES) - unscorable
    right = sum(1 for case in CASES if case[-1][0])
    assert metrics["execution"] == pytest.approx(right / (len(CASES) - unscorable))
    strict = sum(1 for case in CASES if case[-1][1])
    assert metrics["execution_strict"] == pytest.approx(strict / (len(CASES) - unscorable))
    assert metrics["valid"] == pytest.approx(1.0)


def load_fixture() -> list[dict[str, str]]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_the_fixture_is_shaped_like_the_public_file() -> None:
    rows = load_fixture()
    assert isinstance(rows, list) and 25 <= len(rows) <= 40
    assert all(list(row) == ["answer", "question", "context"] for row in rows)
    contexts = [row["context"] for row in rows]
    twice = [
        c for c in contexts
        if len({s.split("(")[0].strip().lower() for s in c.split(";")}) < c.count("CREATE TABLE")
    ]
    assert len(twice) >= 2
    types = {w for c in contexts for w in c.replace(",", " ").replace(")", " ").split()
             if w.isupper() and w not in ("CREATE", "TABLE")}
    assert types == {"VARCHAR", "INTEGER"}


def test_gold_against_gold_on_the_fixture(task: SqlTask) -> None:
    rows = load_fixture()
    items = [(row["answer"], row["answer"], dict(row)) for row in rows]
    records, metrics = score_records(task, items)
    unscorable = [r for r in records if r.details.get("scorable") is False]
    assert len(unscorable) >= 1
    for record in unscorable:
        assert record.error is not None
        assert record.error.startswith("reference query cannot run on its context")
    assert count_scorable(records) == len(rows) - len(unscorable)
    scorable = [r for r in records if r.details.get("scorable")]
    assert [r.fields["question"] for r in scorable if not (r.exact and r.execution)] == []
    assert metrics["exact"] == metrics["execution"] == metrics["execution_strict"] == 1.0


def test_case_duplicate_columns_in_the_fixture_score(task: SqlTask) -> None:
    rows = load_fixture()
    case_twice = [
        row for row in rows
        if any(
            len({c.lower() for c in cols}) < len(cols)
            for cols in (
                [part.split()[0] for part in stmt.split("(", 1)[1].rstrip(") ").split(",")]
                for stmt in row["context"].split(";")
            )
        )
    ]
    assert case_twice
    for row in case_twice:
        score: Score = task.score(row["answer"], row["answer"], {"context": row["context"]})
        assert (score.valid, score.exact, score.execution) == (True, True, True)


def test_the_eval_screen_says_when_the_reference_cannot_run(task: SqlTask) -> None:
    from ftui.core.scoring import count_text
    from ftui.tui.widgets.render import is_scorable, render_example

    context, gold = "CREATE TABLE singer (name VARCHAR)", "SELECT name FROM singer WHERE age > 20"
    records, _ = score_records(task, [("SELECT name FROM singer", gold, {"context": context})])
    record = json.loads(json.dumps(records[0].__dict__))  # as read back from predictions.jsonl
    assert not is_scorable(record)
    text = render_example({"finetuned": record}, ["finetuned"], "finetuned", "sql", dark=True).plain
    assert "reference cannot run on its context: not scored" in text
    assert "why: reference query cannot run on its context: execution error: no such column: age" in text
    assert "exec" not in text.split("reference cannot run")[0].split("finetuned")[-1]
    assert count_text({"n": 568, "n_scorable": 551}) == "568 (551 scorable)"
    assert count_text({"n": 40, "n_scorable": 40}) == count_text({"n": 40}) == "40"


@pytest.mark.parametrize(
    ("gold", "predicted", "ordered", "any_order", "same"),
    [
        ([(1.0, 5)], [(1, 5.0)], False, True, True),  # 1 and 1.0 are one value
        ([(1, "a", None)], [(None, 1, "a")], True, True, True),
        ([(1, "a", None)], [(None, 1, "a")], True, False, False),
        ([(1, 2), (3, 4)], [(2, 1), (3, 4)], False, True, False),  # one order for all rows
        ([("x", 1), ("y", 2)], [(2, "y"), (1, "x")], True, True, False),  # rows out of order
        ([("x", 1), ("y", 2)], [(2, "y"), (1, "x")], False, True, True),
        ([], [], True, True, True),
        ([], [(1,)], False, True, False),
        ([(0.1 + 0.2,)], [(0.3,)], False, False, True),  # floats to 12 significant digits
    ],
)
def test_result_comparison(
    gold: list, predicted: list, ordered: bool, any_order: bool, same: bool
) -> None:
    from ftui.core.tasks.sql import same_results

    assert same_results(gold, predicted, ordered=ordered, any_column_order=any_order) is same


def test_create_tables_merge_per_name_and_keep_only_names_and_types() -> None:
    from ftui.core.tasks.sql_sandbox import Column, tables_from_context

    tables = tables_from_context(
        "CREATE TABLE Employee (name VARCHAR, age INTEGER); "
        "CREATE TABLE employee (age VARCHAR, employee_id INTEGER PRIMARY KEY, NAME VARCHAR); "
        'CREATE TABLE "odd ""name""" (x VARCHAR CHECK (load_extension(\'x\')), X INTEGER, '
        "y VARCHAR, UNIQUE (y))"
    )
    assert [t.name for t in tables] == ["Employee", 'odd "name"']
    assert tables[0].columns == (
        Column("name", "TEXT"), Column("age", "INTEGER"), Column("employee_id", "INTEGER", True),
    )
    assert tables[1].columns == (Column("x", "TEXT"), Column("y", "TEXT", True))


@pytest.mark.parametrize(
    ("name", "key_like"),
    [("id", True), ("Singer_ID", True), ("stuid", True), ("PetID", True), ("uid", True),
     ("paid", False), ("amount_paid", False), ("valid", False), ("name", False),
     ("countrycode", False)],
)
def test_key_like_names(name: str, key_like: bool) -> None:
    from ftui.core.tasks.sql_keys import looks_like_key

    assert looks_like_key(name) is key_like


def test_keys_are_the_columns_that_name_their_own_table() -> None:
    from ftui.core.tasks.sql_keys import key_columns
    from ftui.core.tasks.sql_rows import seeds_from
    from ftui.core.tasks.sql_sandbox import tables_from_context

    tables = tables_from_context(
        PETS + "; CREATE TABLE singer_in_concert (singer_id VARCHAR, concert_id VARCHAR); "
        + FLIGHTS + "; CREATE TABLE city (id VARCHAR)"
    )
    gold = "SELECT 1 FROM flights AS T1 JOIN airlines AS T2 ON T1.airline = T2.uid"
    seeds = seeds_from(sqlglot.parse_one(gold, read="sqlite"), tables)
    members: dict = {}
    for table in tables:
        for column in table.columns:
            key = (table.name.lower(), column.name.lower())
            members.setdefault(seeds.find(key), []).append(key)
    assert key_columns(tables, members, seeds.find) == {
        ("student", "stuid"), ("pets", "petid"), ("airlines", "uid"), ("city", "id"),
    }
