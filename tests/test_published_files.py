"""The public files as they are published, read by every documented path: the CLI's train,
study and data check, the TUI's file picker. Fixtures in ``tests/fixtures`` copy the shapes
exactly (see its README): Spider-intersect's ``spider_create_context_{train,val}.json`` (JSON
lists with ``answer``, ``question``, ``context``) and GEM/viggo's author's ``train.csv`` /
``valid.csv`` / ``test.csv`` (header ``mr,ref``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ftui.core.data import load_split_folder, split_of
from ftui.core.errors import DataError, FtuiError
from ftui.core.runs import Run
from ftui.core.request import RunRequest, resolve_request

from conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures"
SPIDER = FIXTURES / "spider-intersect"
VIGGO_CSV = FIXTURES / "viggo-csv"
VIGGO_FIELDS = ("meaning_representation=mr", "target=ref")


def spider_rows(name: str) -> list[dict]:
    return json.loads((SPIDER / f"spider_create_context_{name}.json").read_text())


@pytest.mark.parametrize("name,split", [
    ("spider_create_context_train.json", "train"), ("spider_create_context_val.json", "validation"),
    ("train.csv", "train"), ("valid.csv", "validation"), ("test.csv", "test"), ("dev.jsonl", "validation"),
    ("validation-00000-of-00001.parquet", "validation"), ("training.jsonl", "train"),
    ("my-data.eval.jsonl", "test"), ("train_spider.json", "train"), ("tables.json", None),
    ("contest.jsonl", None), ("intervals.csv", None),
])
def test_split_files_are_known_by_their_published_names(name, split):
    assert split_of(name) == split


def test_spider_intersect_as_published_trains_on_train_and_evaluates_on_spider_dev():
    resolved = resolve_request(RunRequest(preset="spider", data=SPIDER, overrides=("val=4",)))
    dev = spider_rows("val")
    assert [ex.reference for ex in resolved.splits["test"]] == [r["answer"] for r in dev]
    assert [ex.fields["context"] for ex in resolved.splits["test"]] == [r["context"] for r in dev]
    assert {len(v) for v in (resolved.splits["val"],)} == {4} and len(resolved.splits["train"]) == 12
    assert resolved.spec.data.source == str(SPIDER) and resolved.spec.data.format == "folder"
    assert resolved.spec.split.val == 4


def test_the_offline_advice_is_a_command_that_works(tmp_path):
    res = run_cli("train", "--preset", "spider", "--model", "none")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "ftui train --preset spider --data FOLDER" in res.stderr
    # the advised command, with the folder filled in, is accepted by the parser and the core
    resolved = resolve_request(RunRequest(preset="spider", data=SPIDER, overrides=("val=4",)))
    assert len(resolved.splits["test"]) == 8


def test_data_check_reads_a_preset_from_a_local_copy_given_as_data():
    for args in (["--data", str(SPIDER)], [str(SPIDER)]):
        res = run_cli("data", "check", "--preset", "spider", *args, "--set", "val=4", "--model", "none", "--json")
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout)
        assert report["split"] == {"train": 12, "val": 4, "test": 8}
        assert report["rows"] == 24 and report["leaked"] == 0 and report["ok"]


def test_gem_viggo_csv_needs_its_columns_named_and_then_reads_as_published():
    with pytest.raises(FtuiError) as refused:
        resolve_request(RunRequest(preset="viggo", data=VIGGO_CSV))
    message = str(refused.value)
    assert "no column 'target'" in message and "--field" in message and "mr, ref" in message
    resolved = resolve_request(RunRequest(preset="viggo", data=VIGGO_CSV, fields=VIGGO_FIELDS))
    assert {k: len(v) for k, v in resolved.splits.items()} == {"train": 12, "val": 3, "test": 4}
    first = resolved.splits["test"][0]
    assert first.reference.startswith("inform(name[Stronghold 2], release_year[2005]")
    assert first.fields["text"].startswith("Stronghold 2 is a real-time strategy")
    assert resolved.spec.data.fields == {"text": "ref", "reference": "mr"}
    # the task's own field names work as well as the preset's column names
    same = resolve_request(RunRequest(preset="viggo", data=VIGGO_CSV, fields=("reference=mr", "text=ref")))
    assert [ex.reference for ex in same.splits["test"]] == [ex.reference for ex in resolved.splits["test"]]


def test_a_field_that_names_nothing_is_refused_with_the_choices():
    res = run_cli("data", "check", "--preset", "viggo", "--data", str(VIGGO_CSV), "--field", "mrr=mr",
                  "--model", "none")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--field mrr" in res.stderr and "meaning_representation" in res.stderr


def test_a_folder_without_a_preset_uses_the_splits_it_finds():
    loaded = load_split_folder(VIGGO_CSV, "funcrep", {"text": "ref", "reference": "mr"})
    assert {k: len(v) for k, v in loaded.named.items()} == {"train": 12, "val": 3, "test": 4}
    res = run_cli("data", "check", "--data", str(VIGGO_CSV), "--task", "funcrep", "--field", "text=ref",
                  "--model", "none", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["split"] == {"train": 12, "val": 3, "test": 4}


def test_two_files_for_one_split_are_refused_by_name(tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(SPIDER, folder)
    (folder / "train.jsonl").write_text(json.dumps(spider_rows("train")[0]) + "\n")
    with pytest.raises(DataError) as refused:
        load_split_folder(folder, "sql", None, {"train": "train", "test": "validation"})
    assert "spider_create_context_train.json" in str(refused.value) and "train.jsonl" in str(refused.value)


def test_data_check_on_a_folder_names_the_file_and_counts_leakage(tmp_path):
    folder = tmp_path / "leaky"
    shutil.copytree(SPIDER, folder)
    train, dev = spider_rows("train"), spider_rows("val")
    dev[3] = train[5]  # a held-out row that is also a training row
    train.append(train[0])  # and a plain duplicate inside train
    (folder / "spider_create_context_val.json").write_text(json.dumps(dev))
    (folder / "spider_create_context_train.json").write_text(json.dumps(train))
    # val=0: every row of the train file is trained on (val is otherwise carved from it)
    res = run_cli("data", "check", "--preset", "spider", "--data", str(folder), "--set", "val=0", "--model", "none")
    assert res.returncode == 0, res.stderr
    assert "spider_create_context_train.json line 17 repeats spider_create_context_train.json line 1" in res.stdout
    assert "leakage: 1 held-out row(s) also appear in the training split" in res.stdout
    assert "spider_create_context_val.json line 4" in res.stdout
    res = run_cli("data", "check", "--preset", "spider", "--data", str(folder), "--set", "val=0", "--model", "none",
                  "--json")
    report = json.loads(res.stdout)
    assert report["leaked"] == 1 and report["leaked_lines"] == [
        {"line": 4, "first": 6, "file": "spider_create_context_val.json", "first_file": "spider_create_context_train.json"}]


def test_a_bad_row_in_a_folder_names_its_file_and_line(tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(VIGGO_CSV, folder)
    with open(folder / "valid.csv", "a") as f:
        f.write(',What do you think of Crysis?\n')  # no meaning representation
    res = run_cli("data", "check", "--preset", "viggo", "--data", str(folder), "--field", "meaning_representation=mr",
                  "--field", "target=ref", "--model", "none")
    assert res.returncode == 2
    assert "valid.csv line 5, field 'mr': empty reference" in res.stdout, res.stdout


def test_study_starts_runs_on_the_published_split(tmp_path):
    from ftui.runner.study_driver import start_study

    study = start_study(preset="viggo", data=VIGGO_CSV, task=None, backends=["local"], models=[],
                        overrides=[], fields=VIGGO_FIELDS, confirm=lambda q: False)
    [run] = study.runs()
    assert run.spec.split_sizes == {"train": 12, "val": 3, "test": 4}
    assert run.examples("test")[1].reference == "request_attribute(platforms[])"


@pytest.mark.parametrize("command", ["train", "study"])
def test_hub_needs_a_preset_and_says_so_offline(command):
    res = run_cli(command, "--data", str(SPIDER), "--hub", "--task", "sql")
    assert res.returncode == 2 and "--hub" in res.stderr and "Traceback" not in res.stderr
    res = run_cli(command, "--preset", "viggo", "--hub")
    assert res.returncode == 2 and "GEM/viggo" in res.stderr and "Traceback" not in res.stderr
    assert f"ftui train --preset viggo --data FOLDER" in res.stderr


@pytest.mark.timeout(400)
def test_train_on_spider_intersect_from_the_cli_end_to_end(tmp_path, tiny_model):
    res = run_cli("train", "--preset", "spider", "--data", str(SPIDER), "--model", str(tiny_model),
                  "--max-steps", "2", "--set", "val=4", "--set", "batch_size=4", "--set", "eval.limit=3",
                  "--set", "eval.max_new_tokens=6", "--set", "eval.k=1", "--set", "eval_every=2", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["status"] == "succeeded", (Path(info["dir"]) / "runner.log").read_text()[-2000:]
    run = Run(Path(info["dir"]))
    assert run.spec.data.source == str(SPIDER)
    assert [ex.reference for ex in run.examples("test")] == [r["answer"] for r in spider_rows("val")]
    assert set(info["eval"]) == {"base", "kshot", "finetuned"}
    assert all(json.loads((run.dir / "eval" / v / "metrics.json").read_text())["n"] == 3 for v in info["eval"])
    # the same run evaluated on another held-out file: its own results stay as they were
    before = (run.dir / "eval" / "finetuned" / "metrics.json").read_text()
    res = run_cli("eval", run.id, "--data", str(FIXTURES / "spider_dev_sample.json"), "--variant", "finetuned",
                  "--limit", "4", "--json")
    assert res.returncode == 0, res.stderr
    assert "held-out set 'spider_dev_sample'" in res.stderr
    metrics = json.loads((run.dir / "eval" / "finetuned@spider_dev_sample" / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["variant"] == "finetuned@spider_dev_sample"
    assert (run.dir / "eval" / "finetuned" / "metrics.json").read_text() == before
    shown = json.loads(run_cli("show", run.id, "--json").stdout)
    assert set(shown["eval"]) == {"base", "kshot", "finetuned", "finetuned@spider_dev_sample"}
    # a held-out file that is not data: exit 2, nothing recorded is lost
    bad = tmp_path / "bad.json"
    bad.write_text("[{\"question\": 1}]")
    res = run_cli("eval", run.id, "--data", str(bad))
    assert res.returncode == 2 and "Traceback" not in res.stderr and "bad.json" in res.stderr
    assert (run.dir / "eval" / "finetuned" / "metrics.json").read_text() == before
