"""The command line's contract: exit codes and --json output, for good and bad input."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli


@pytest.mark.parametrize("args,needle", [
    (["export", "latest", "--format", "pdf"], "invalid choice: 'pdf'"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["data", "check"], "give a FILE or --preset NAME"),
    (["data", "check", "--preset", "sql", "--task", "json"], "disagrees with preset 'sql'"),
    (["show", "latest"], "no runs yet"),
    (["score", "--task", "text", "missing.jsonl"], "missing.jsonl: no such file"),
])
def test_bad_input_is_one_message_and_exit_2(args, needle):
    res = run_cli(*args)
    assert res.returncode == 2, res
    assert needle in res.stderr and "Traceback" not in res.stderr
    assert res.stdout == ""


def test_runs_json_is_an_empty_list_without_runs():
    res = run_cli("runs", "--json")
    assert res.returncode == 0 and json.loads(res.stdout) == []


def test_openai_backend_without_a_key_starts_nothing():
    res = run_cli("train", "--preset", "demo", "--backend", "openai", env={"OPENAI_API_KEY": ""})
    assert res.returncode == 2 and "OPENAI_API_KEY is not set" in res.stderr
    assert json.loads(run_cli("runs", "--json").stdout) == []


@pytest.mark.parametrize("args,needle", [
    (["resume", "nope"], "no run matches 'nope'"),
    (["cancel", "latest"], "no runs yet"),
    (["eval", "latest"], "no runs yet"),
    (["eval", "x", "--variant", "best"], "invalid choice: 'best'"),
])
def test_run_commands_refuse_bad_input(args, needle):
    res = run_cli(*args)
    assert res.returncode == 2 and needle in res.stderr and "Traceback" not in res.stderr


def test_a_misspelt_command_gets_a_suggestion():
    res = run_cli("tran", "--preset", "demo")
    assert res.returncode == 2 and "did you mean `ftui train`?" in res.stderr and "Traceback" not in res.stderr


def test_runs_lists_newest_first_under_a_header_with_each_tasks_headline_metric(ftui_home):
    import json as _json

    from ftui.core.runs import create_run

    for label, task in (("older", "sql"), ("newer", "text")):
        run = create_run(label=label, spec={"task": task, "backend": "local", "model": "m"}, splits={})
        (run.dir / "eval" / "finetuned").mkdir(parents=True)
        (run.dir / "eval" / "finetuned" / "metrics.json").write_text(_json.dumps(
            {"variant": "finetuned", "n": 4, "metrics": {"valid": 1.0, "exact": 0.25, "execution": 0.75}}))
    lines = run_cli("runs").stdout.splitlines()
    assert lines[0].startswith("run ") and "status" in lines[0]
    assert "newer" in lines[1] and "finetuned exact 25%" in lines[1]
    assert "older" in lines[2] and "finetuned execution 75%" in lines[2]


@pytest.mark.parametrize("steps", ["0", "-3"])
def test_max_steps_below_one_is_refused_before_a_run_exists(steps, ftui_home):
    res = run_cli("train", "--preset", "demo", "--max-steps", steps)
    assert res.returncode == 2 and "--max-steps must be 1 or more" in res.stderr
    assert not (ftui_home / "runs").exists() or not any((ftui_home / "runs").iterdir())


@pytest.mark.parametrize("args, message", [
    (["--set", "method=lora", "--set", "quantization=4bit"], "quantization=4bit needs a CUDA GPU (bitsandbytes) and this machine has none"),
    (["--model", "nosuchmodel", "--detach"], "cannot load model 'nosuchmodel': it is not a local folder, not in the hub cache"),
    (["--model", ".", "--detach"], "model folder '.' has no config.json"),
])
def test_what_would_fail_in_the_runner_is_refused_before_a_run_exists(args, message, ftui_home):
    """Quantization on a machine without CUDA, and a model that cannot load here (offline:
    not a folder, not in the hub cache), are refused before anything starts."""
    res = run_cli("train", "--preset", "demo", *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (ftui_home / "runs").exists() or not any((ftui_home / "runs").iterdir())


def test_train_help_lists_every_setting_with_its_default():
    out = run_cli("train", "--help").stdout
    assert "lora_r=8" in out and "budget_usd=5.0" in out and "max_steps=-1: the epochs decide" in out
    assert "--model" in out and "the embedded model" in out


def test_show_prints_the_data_and_the_settings_of_a_file_run(ftui_home):
    from pathlib import Path

    from ftui.core.request import RunRequest, prepare_run

    folder = Path(__file__).parent / "fixtures" / "viggo-csv"
    run = prepare_run(RunRequest(data=folder, task="funcrep", fields=("text=ref",), overrides=("lora_r=4",)))
    out = run_cli("show", run.id).stdout
    assert "preset" not in out  # a file run has none
    assert f"data         {folder} (19 examples; split train 12, val 3, test 4)" in out
    assert "lora_r=4" in out and "target_modules=q_proj,k_proj,v_proj,o_proj" in out
    assert "report to    none" in out  # no experiment tracker unless asked


def test_rm_removes_finished_runs_and_studies_and_refuses_a_working_run(ftui_home):
    import os
    import time as _time

    from ftui.core.runs import create_run, list_runs
    from ftui.core.study import create_study, list_studies

    done = create_run(label="done", spec={"task": "text", "backend": "local", "model": "m"}, splits={})
    done.write_status("failed", message="boom", ended=_time.time())
    busy = create_run(label="busy", spec={"task": "text", "backend": "local", "model": "m"}, splits={})
    busy.write_status("running")  # this process's pid and a fresh heartbeat: a runner at work
    res = run_cli("rm", done.id, busy.id)
    assert res.returncode == 2 and f"run {busy.id} is running: cancel it first" in res.stderr
    assert {r.id for r in list_runs()} == {done.id, busy.id}  # checked first: nothing removed
    res = run_cli("rm", done.id[:-2])
    assert res.returncode == 0 and res.stdout.strip() == f"removed run {done.id}"
    assert [r.id for r in list_runs()] == [busy.id] and os.path.isdir(busy.dir)
    assert run_cli("rm", "nosuchrun").returncode == 2
    study = create_study(preset="demo", label="demo", runs=[busy])
    res = run_cli("rm", "--study", study.id)
    assert res.returncode == 0 and list_studies() == [] and os.path.isdir(busy.dir)  # its runs stay
