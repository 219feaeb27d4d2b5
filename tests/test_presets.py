"""Every shipped preset loads, its sample is clean, and its references score as correct."""

from __future__ import annotations

import json

import pytest

from ftui.core.data import load_preset_rows
from ftui.core.errors import ConfigError
from ftui.core.presets import load_preset, load_preset_file, preset_names
from ftui.core.prompts import render_messages
from ftui.core.scoring import score_examples
from ftui.core.tasks import make_task

from conftest import run_cli

SHIPPED = ["demo", "json-emotions", "spider", "sql", "viggo"]
OFFLINE = [n for n in SHIPPED if n != "spider"]  # spider reads the hub (or a local copy) only


def test_the_shipped_presets():
    assert preset_names() == SHIPPED


@pytest.mark.parametrize("name", OFFLINE)
def test_preset_sample_is_clean_and_references_score_perfectly(name):
    preset = load_preset(name)
    loaded = load_preset_rows(preset)
    assert loaded.issues == [] and len(loaded.examples) >= 300
    if preset.data.limit:
        assert len(loaded.examples) == preset.data.limit
    task = make_task(preset.task, preset.task_options)
    sample = loaded.examples[:: max(1, len(loaded.examples) // 60)]
    records, metrics = score_examples(task, sample, [ex.reference for ex in sample])
    bad = [r for r in records if not (r.valid and r.exact)]
    assert not bad, bad[:2]
    assert metrics["valid"] == 1.0 and metrics["exact"] == 1.0
    msgs = render_messages(sample[0], preset.prompt)
    assert msgs[0]["role"] == "system" and msgs[-1]["role"] == "user"
    # The user template was filled in with every field of the example.
    for value in sample[0].fields.values():
        assert value in msgs[-1]["content"]


def test_presets_json_lists_them_all():
    res = run_cli("presets", "--json")
    assert res.returncode == 0
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == SHIPPED
    demo = next(r for r in rows if r["name"] == "demo")
    assert demo["rows"] == 1340 and demo["split"] == {"train": 1200, "val": 40, "test": 100}
    assert next(r for r in rows if r["name"] == "sql")["hub"] == "b-mc2/sql-create-context"


@pytest.mark.parametrize("name", OFFLINE)
def test_data_check_passes_for_each_shipped_sample(name):
    res = run_cli("data", "check", "--preset", name, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["ok"] and report["errors"] == [] and report["duplicates"] == 0
    assert report["tokenizer"] == "smollm2-135m", report["tokenizer"]
    assert 20 < report["tokens"]["mean"] < report["max_length"]


@pytest.mark.parametrize("text,message", [
    ('name = "x"\n', "missing key(s)"),
    ('name="x"\ntitle="t"\ndescription="d"\ntask="poetry"\n[data]\nsample="s"\nfields={reference="r"}\n'
     '[prompt]\nsystem=""\nuser="{x}"\n', "task: must be one of"),
    ('name="x"\ntitle="t"\ndescription="d"\ntask="sql"\n[data]\nsample="s"\nfields={reference="r"}\n'
     '[prompt]\nsystem=""\nuser="{x}"\n[local]\nlora_r=0\n', "local.lora_r: must be a whole number >= 1, got 0"),
    ('name="x"\ntitle="t"\ndescription="d"\ntask="sql"\n[data]\nsample="s"\nfields={reference="r"}\n'
     '[prompt]\nsystem=""\nuser="{x}"\n[eval]\nk_shots=3\n', "eval: unknown key(s) k_shots"),
    ("name = \n", "cannot read preset"),
])
def test_bad_preset_files_name_the_key(tmp_path, text, message):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load_preset_file(path)
    assert str(path) in str(info.value)
