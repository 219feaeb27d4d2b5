"""The synthetic preset samples: a fresh run matches the shipped files, and each is sound."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from ftui.presets.synth import DATA_DIR, DATASETS, Dataset, write
from ftui.presets.synth.__main__ import main
from ftui.presets.synth.emotions import EMOTIONS
from ftui.presets.synth.viggo_pools import ESRBS, GENRES, PERSPECTIVES, RATINGS
from ftui.core.tasks.funcrep import parse_mr
from ftui.core.tasks.viggo import ATTRIBUTES, FUNCTIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COUNTS = {"sql": 3000, "viggo": 1500, "json_emotions": 1200}
PRESETS = Path(DATA_DIR).parent


def shipped(name: str) -> list[dict[str, Any]]:
    dataset = next(d for d in DATASETS if d.name == name)
    text = (DATA_DIR / dataset.filename).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("data")
    return {d.name: write(d, out) for d in DATASETS}


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_fresh_run_is_byte_identical_to_the_shipped_file(
    dataset: Dataset, regenerated: dict[str, Path]
) -> None:
    shipped_file = DATA_DIR / dataset.filename
    assert shipped_file.read_bytes() == regenerated[dataset.name].read_bytes(), (
        f"{shipped_file} is stale; regenerate with "
        "`PYTHONPATH=src python -m ftui.presets.synth`"
    )


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_row_counts_and_no_duplicates(dataset: Dataset) -> None:
    raw = (DATA_DIR / dataset.filename).read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.decode("utf-8").splitlines()
    assert len(lines) == COUNTS[dataset.name]
    assert len(set(lines)) == len(lines)
    first_field = [next(iter(json.loads(line).values())) for line in lines]
    assert len(set(first_field)) == len(lines)  # no repeated question, sentence or text


def test_cli_only_writes_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--only", "json_emotions"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["json_emotions.jsonl"]
    assert "1200 rows" in capsys.readouterr().out


# --- sql -------------------------------------------------------------------------------


def _columns(context: str) -> set[str]:
    return {
        column.split()[0].lower()
        for stmt in context.split("; ")
        for column in stmt[stmt.index("(") + 1 : -1].split(", ")
    }


def test_every_sql_answer_runs_on_its_context() -> None:
    rows = shipped("sql")
    for row in rows:
        assert set(row) == {"question", "context", "answer"}
        db = sqlite3.connect(":memory:")
        for stmt in row["context"].split("; "):
            assert stmt.startswith("CREATE TABLE ")
            db.execute(stmt)
        db.execute(row["answer"]).fetchall()
        db.close()
        # a double-quoted literal that spells a column would be read as that column
        literals = {lit.lower() for lit in re.findall(r'"([^"]*)"', row["answer"])}
        assert not literals & _columns(row["context"]), row
        assert len(sqlglot.parse(row["answer"], read="sqlite")) == 1


def test_sql_mixes_wikisql_and_spider_styles() -> None:
    answers = [row["answer"] for row in shipped("sql")]
    contexts = [row["context"] for row in shipped("sql")]
    share = lambda hits: sum(hits) / len(answers)  # noqa: E731
    assert 0.10 <= share(" JOIN " in a for a in answers) <= 0.25
    assert share("; " in c for c in contexts) == share(" JOIN " in a for a in answers)
    assert share("table_name_" in c for c in contexts) > 0.3
    for needle in ("COUNT(", "MAX(", "MIN(", "AVG(", "SUM(", "GROUP BY", "ORDER BY", "LIMIT",
                   " AND ", " > ", " < ", "DISTINCT", "HAVING"):
        assert share(needle in a for a in answers) > 0.01, needle
    assert any(re.search(r'"[a-z0-9 ]+"', a) for a in answers)  # lower-cased literals
    assert any(re.search(r'"[A-Z]', a) for a in answers)  # and some that keep their case


# --- viggo -----------------------------------------------------------------------------


def test_viggo_uses_every_function_and_attribute_in_canonical_order() -> None:
    functions: Counter[str] = Counter()
    attributes: Counter[str] = Counter()
    genres: Counter[str] = Counter()
    yes_no = {"yes", "no"}
    closed = {"genres": set(GENRES), "player_perspective": set(PERSPECTIVES),
              "esrb": set(ESRBS), "rating": set(RATINGS), "has_multiplayer": yes_no,
              "available_on_steam": yes_no, "has_linux_release": yes_no,
              "has_mac_release": yes_no}
    for row in shipped("viggo"):
        assert set(row) == {"target", "meaning_representation"}
        mr = parse_mr(row["meaning_representation"])
        assert mr.function in FUNCTIONS
        order = [ATTRIBUTES.index(a) for a in mr.attributes]
        assert order == sorted(order), row
        if mr.function == "request_attribute":
            assert list(mr.attributes.values()) == [()]
        else:
            assert all(mr.attributes.values())
        for attribute, values in mr.attributes.items():
            if attribute in ("name", "developer", "esrb", "release_year", "exp_release_date"):
                assert all(v in row["target"] for v in values), row
        functions[mr.function] += 1
        attributes.update(list(mr.attributes))
        genres.update(mr.attributes.get("genres", ()))
        for attribute, allowed in closed.items():
            assert set(mr.attributes.get(attribute, ())) <= allowed, row
    assert set(functions) == set(FUNCTIONS) and min(functions.values()) >= 50
    assert set(attributes) == set(ATTRIBUTES) and min(attributes.values()) >= 50
    assert set(genres) == set(GENRES)


# --- json_emotions ---------------------------------------------------------------------


def test_emotion_segments_rebuild_the_text_and_use_every_emotion() -> None:
    emotions: Counter[str] = Counter()
    for row in shipped("json_emotions"):
        assert set(row) == {"text", "reference"}
        segments = json.loads(row["reference"])
        assert 1 <= len(segments) <= 4
        assert " ".join(s["text"] for s in segments) == row["text"]
        assert all(set(s) == {"text", "emotion"} and s["text"] for s in segments)
        emotions.update(s["emotion"] for s in segments)
    assert set(emotions) == set(EMOTIONS) and min(emotions.values()) >= 100


def test_emotions_match_the_preset_schema() -> None:
    preset = tomllib.loads((PRESETS / "json-emotions.toml").read_text(encoding="utf-8"))
    schema = json.loads(preset["task_options"]["schema"])
    assert tuple(schema["items"]["properties"]["emotion"]["enum"]) == EMOTIONS
