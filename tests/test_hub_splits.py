"""Presets with the public splits of published comparisons, on small local files shaped
exactly like the hub datasets (same fields, same split names): spider and GEM/viggo."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftui.core.request import RunRequest, resolve_request
from ftui.core.tasks import make_task

from conftest import run_cli, write_jsonl


def spider_row(i: int) -> dict:
    # samlhuillier/sql-create-context-spider-intersect: the columns of sql-create-context.
    return {"answer": f"SELECT name FROM singer WHERE age > {20 + i}",
            "question": f"Which singers are older than {20 + i}?",
            "context": "CREATE TABLE singer (name VARCHAR, age INTEGER)"}


def spider_folder(root: Path, n_train: int = 130, n_dev: int = 9) -> Path:
    folder = root / "spider-intersect"
    # The hub's own layout for one split (data/<split>-00000-of-00001.parquet), JSONL for the other.
    (folder / "data").mkdir(parents=True)
    rows = [spider_row(i) for i in range(n_train)]
    pq.write_table(pa.Table.from_pylist(rows), folder / "data" / "train-00000-of-00001.parquet")
    write_jsonl(folder / "validation.jsonl", [spider_row(1000 + i) for i in range(n_dev)])
    return folder


def viggo_row(i: int) -> dict:
    # GEM/viggo: gem_id, meaning_representation, target, references.
    mr = f"inform(name[Game {i}], rating[good], platforms[PC])"
    text = f"Game {i} is a good game on PC."
    return {"gem_id": f"viggo-train-{i}", "meaning_representation": mr, "target": text, "references": [text]}


def test_spider_uses_spider_dev_as_the_held_out_split(tmp_path):
    folder = spider_folder(tmp_path)
    resolved = resolve_request(RunRequest(preset="spider", data=folder))
    splits = resolved.splits
    assert [ex.reference for ex in splits["test"]] == [spider_row(1000 + i)["answer"] for i in range(9)]
    assert len(splits["val"]) == 100 and len(splits["train"]) == 30  # val carved from Spider train
    train_refs = {ex.reference for ex in splits["train"] + splits["val"]}
    assert train_refs == {spider_row(i)["answer"] for i in range(130)}
    task = make_task("sql", {})
    assert all(task.score(ex.reference, ex.reference, ex.fields).exact for ex in splits["test"])


def test_gem_viggo_splits_are_used_as_published(tmp_path):
    folder = tmp_path / "viggo"
    folder.mkdir()
    for split, n in (("train", 12), ("validation", 4), ("test", 5)):
        rows = [dict(viggo_row(i), gem_id=f"viggo-{split}-{i}") for i in range(n)]
        write_jsonl(folder / f"{split}.jsonl", [dict(r, meaning_representation=r["meaning_representation"]
                                                     .replace("Game", split.title())) for r in rows])
    splits = resolve_request(RunRequest(preset="viggo", data=folder)).splits
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "val": 4, "test": 5}
    assert all(ex.reference.startswith("inform(name[Test") for ex in splits["test"])
    assert all(ex.reference.startswith("inform(name[Validation") for ex in splits["val"])


def test_data_check_reports_the_published_split_sizes(tmp_path):
    res = run_cli("data", "check", "--preset", "spider", str(spider_folder(tmp_path)), "--model", "none", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["split"] == {"train": 30, "val": 100, "test": 9}


def test_a_missing_split_file_is_named(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [spider_row(0)])
    res = run_cli("data", "check", "--preset", "spider", str(folder), "--model", "none")
    assert res.returncode == 2
    assert "no file for split 'validation'" in res.stderr and str(folder) in res.stderr


@pytest.mark.parametrize("env", [
    {"HF_HUB_OFFLINE": "1"},
    {"HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9"},  # nothing listens on port 9
])
def test_spider_offline_says_the_hub_cannot_be_reached(env):
    res = run_cli("data", "check", "--preset", "spider", "--model", "none", env=env)
    assert res.returncode == 2
    assert "samlhuillier/sql-create-context-spider-intersect" in res.stderr
    assert ("cannot be reached" in res.stderr) or ("HF_HUB_OFFLINE is set" in res.stderr)
    assert "--data FOLDER" in res.stderr and "Traceback" not in res.stderr
