"""The OpenAI backend against a local stand-in server (tests/openai_standin.py), never the
real service: pre-flight and cost, the whole job lifecycle, cancel, re-attach, faults."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ftui.core.config import OpenAISettings
from ftui.core.events import read_events
from ftui.core.examples import Example
from ftui.core.openai_prep import (
    auto_epochs,
    check_chat_record,
    count_messages,
    inference_price,
    preflight_examples,
    price_key,
    training_price,
)
from ftui.core.prompts import DEFAULT_TEMPLATES, render_user
from ftui.core.runs import HEARTBEAT_STALE_S, Run, write_json_atomic
from ftui.core.request import RunRequest, resolve_request

from conftest import run_cli, write_jsonl
from openai_standin import API_KEY, StandIn
from test_runner import wait_for

FAST = ["--set", "poll_interval_s=0.05", "--set", "request_timeout_s=2", "--set", "max_retries=3"]


@pytest.fixture
def standin():
    server = StandIn().start()
    # The fine-tuned model answers the references of the demo preset's held-out split.
    resolved = resolve_request(RunRequest(preset="demo", backend="openai"))
    server.answers = {render_user(ex, resolved.template): ex.reference for ex in resolved.splits["test"]}
    yield server
    server.stop()


def start_detached(standin: StandIn, *extra: str) -> Run:
    res = run_cli("train", "--preset", "demo", "--backend", "openai", "--detach", "--json", *FAST, *extra,
                  env=standin.env())
    assert res.returncode == 0, res.stderr
    return Run(Path(json.loads(res.stdout)["dir"]))


def steps(run: Run) -> list[int]:
    return [e["step"] for e in read_events(run.events_path) if e["type"] == "train"]


def assert_no_key_under(home: Path) -> None:
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert API_KEY.encode() not in path.read_bytes(), f"the API key leaked into {path}"


# -- pre-flight --------------------------------------------------------------------------------

def test_cost_estimate_matches_a_hand_computation(tmp_path):
    # Each line: 3 (reply priming) + 2 turns x (3 + "user"/"assistant" 1 + one-token word 1) = 13 tokens.
    rows = [{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world"}]}] * 10
    assert count_messages(rows[0]["messages"], "gpt-4.1-mini") == 13
    examples = [Example(fields={"input": "hello"}, reference="world",
                        messages=({"role": "user", "content": "hello"},), line=i + 1) for i in range(10)]
    pre = preflight_examples(examples, [], [], template=DEFAULT_TEMPLATES["text"],
                             settings=OpenAISettings(model="gpt-4.1-mini-2025-04-14"))
    assert pre.train_tokens == 130
    # auto: 10 examples x 3 epochs < 100, so OpenAI picks 100 // 10 = 10 epochs.
    assert (pre.n_epochs, pre.epochs_auto) == (10, True)
    assert pre.train_usd == pytest.approx(130 * 10 * 5.00 / 1e6)  # gpt-4.1-mini: $5 per 1M
    assert pre.problems == []
    fixed = preflight_examples(examples, [], [], template=DEFAULT_TEMPLATES["text"],
                               settings=OpenAISettings(model="gpt-4o-mini-2024-07-18", n_epochs=2))
    assert fixed.train_usd == pytest.approx(130 * 2 * 3.00 / 1e6)


def test_auto_epochs_follow_the_published_heuristic():
    assert [auto_epochs(n) for n in (3, 10, 20, 33, 34, 1000, 9000, 30000)] == [25, 10, 5, 3, 3, 3, 2, 1]


def test_price_table_matches_model_ids_by_family():
    assert price_key("gpt-4.1-nano-2025-04-14") == "gpt-4.1-nano"
    assert price_key("gpt-4.1-2025-04-14") == "gpt-4.1"
    assert price_key("ft:gpt-4o-mini-2024-07-18:acme:ftui:abc") == "gpt-4o-mini"
    assert [training_price(m) for m in ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini",
                                        "gpt-3.5-turbo-0125")] == [25, 5, 1.5, 25, 3, 8]
    assert training_price("o3-mini") is None
    assert inference_price("ft:gpt-4.1-nano-2025-04-14:x:y:z") == (0.20, 0.80)
    assert inference_price("gpt-4.1-nano-2025-04-14") == (0.10, 0.40)


def test_chat_format_check_covers_tool_calls():
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"city": "Oslo"}'}}
    good = {"messages": [{"role": "user", "content": "Weather in Oslo?"},
                         {"role": "assistant", "tool_calls": [call]},
                         {"role": "tool", "tool_call_id": "call_1", "content": "4 C"},
                         {"role": "assistant", "content": "It is 4 C."}],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]}
    assert check_chat_record(good) == []
    bad_args = json.loads(json.dumps(good))
    bad_args["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{city: Oslo"
    assert check_chat_record(bad_args) == ["messages[1].tool_calls[0].function.arguments: not valid JSON"]
    orphan = json.loads(json.dumps(good))
    orphan["messages"][2]["tool_call_id"] = "call_9"
    assert "no earlier tool call has id 'call_9'" in check_chat_record(orphan)[0]
    assert check_chat_record({"messages": [{"role": "robot", "content": "x"}]})[0].startswith("messages[0].role")


def test_data_check_shows_the_openai_preflight():
    res = run_cli("data", "check", "--preset", "demo", "--backend", "openai", "--json", env={"OPENAI_API_KEY": ""})
    assert res.returncode == 0, res.stderr
    pre = json.loads(res.stdout)["openai"]
    assert pre["n_train"] == 1200 and pre["n_epochs"] == 1 and pre["epochs_auto"] is False
    assert pre["train_usd"] == pytest.approx(pre["train_tokens_per_epoch"] * 1.5 / 1e6, abs=1e-6)
    assert pre["key_present"] is False and not pre["over_budget"]


def test_train_refuses_without_a_key_and_above_budget_without_yes(standin):
    res = run_cli("train", "--preset", "demo", "--backend", "openai", env={"OPENAI_API_KEY": ""})
    assert res.returncode == 2 and "OPENAI_API_KEY is not set" in res.stderr
    res = run_cli("train", "--preset", "demo", "--backend", "openai", "--set", "budget_usd=0.001", *FAST,
                  env=standin.env())
    assert res.returncode == 2
    assert "above budget_usd $0.001" in res.stderr and "--yes" in res.stderr
    assert "Traceback" not in res.stderr
    assert standin.count("POST", "/files$") == 0  # nothing was sent
    res = run_cli("train", "--preset", "demo", "--backend", "openai", "--max-steps", "5", env=standin.env())
    assert res.returncode == 2 and "whole epochs" in res.stderr


# -- the lifecycle ---------------------------------------------------------------------------------

def test_whole_flow_ends_succeeded_with_loss_cost_and_three_variants(standin, ftui_home):
    res = run_cli("train", "--preset", "demo", "--backend", "openai", "--json", *FAST, env=standin.env())
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["status"] == "succeeded", info
    run = Run(Path(info["dir"]))
    job = json.loads((run.dir / "job.json").read_text())
    total = 300  # 1200 examples x 1 epoch / batch 4
    assert steps(run) == list(range(1, total + 1))
    events = read_events(run.events_path)
    vals = [e for e in events if e["type"] == "val"]
    assert [e["step"] for e in vals] == list(range(10, 301, 10))
    assert all(e["lr"] is None and 0 < e["loss"] < 3 for e in events if e["type"] == "train")
    # The billed cost: trained_tokens x $1.50 per 1M (gpt-4.1-nano), then the eval's usage on top.
    assert job["billed_usd"] == pytest.approx(job["trained_tokens"] * 1.5 / 1e6, abs=1e-6)
    evals = {v: m for v, m in run.eval_metrics().items()}
    eval_usd = sum(m["cost_usd"] for m in evals.values())
    assert info["cost_usd"] == pytest.approx(job["billed_usd"] + eval_usd, abs=1e-5)
    assert set(evals) == {"base", "kshot", "finetuned"} and all(m["n"] == 100 for m in evals.values())
    assert evals["finetuned"]["metrics"]["exact"] == 1.0 and evals["finetuned"]["model"] == job["fine_tuned_model"]
    assert evals["base"]["metrics"]["valid"] == 0.0
    assert evals["kshot"]["metrics"]["valid"] == 1.0 and evals["kshot"]["metrics"]["exact"] == 0.0
    assert evals["base"]["usage"]["prompt_tokens"] > 0 and evals["base"]["cost_usd"] > 0
    assert job["checkpoints"] and (run.dir / "openai" / "result.csv").is_file()
    assert (run.dir / "openai" / "train.jsonl").read_text().count("\n") == 1200
    assert standin.count("POST", "/fine_tuning/jobs$") == 1
    assert standin.completions == 300
    # Export works unchanged on an OpenAI run.
    assert run_cli("export", run.id).returncode == 0
    assert "finetuned" in (run.dir / "summary.md").read_text()
    assert_no_key_under(ftui_home)


def test_cancel_cancels_the_job(standin, ftui_home):
    standin.hold_running = True
    run = start_detached(standin)
    deadline = time.monotonic() + 30
    while standin.count("GET", r"/jobs/ftjob-\d+$") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    res = run_cli("cancel", run.id)
    assert res.returncode == 0, res.stderr + res.stdout
    assert run.status()["state"] == "cancelled"
    assert "cannot continue a cancelled job" in run.status()["message"]
    (job,) = standin.created_jobs()
    assert job["status"] == "cancelled"
    assert not (run.dir / "eval").exists()
    assert_no_key_under(ftui_home)


def test_resume_reattaches_to_the_job_after_the_runner_is_killed(standin, ftui_home):
    standin.steps_per_poll = 5
    run = start_detached(standin)
    deadline = time.monotonic() + 30
    while len(steps(run)) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    standin.hold_running = True
    pid = run.status()["pid"]
    os.kill(pid, signal.SIGKILL)
    while True:  # wait until the process is gone
        try:
            os.kill(pid, 0)
            time.sleep(0.05)
        except ProcessLookupError:
            break
    recorded = steps(run)
    assert 20 <= len(recorded) < 300
    st = json.loads(run.status_path.read_text())
    st["heartbeat"] = time.time() - HEARTBEAT_STALE_S - 1  # let it go stale without waiting a minute
    write_json_atomic(run.status_path, st)
    assert run_cli("show", run.id, "--json").stdout.count('"lost"') == 1
    standin.hold_running = False
    res = run_cli("resume", run.id, "--detach", env=standin.env())
    assert res.returncode == 0, res.stderr
    assert wait_for(run) == "succeeded", (run.dir / "runner.log").read_text()[-2000:]
    assert steps(run) == list(range(1, 301))  # every step exactly once across the two sessions
    assert standin.count("POST", "/fine_tuning/jobs$") == 1 and standin.count("POST", "/files$") == 2
    messages = [e["message"] for e in read_events(run.events_path) if e["type"] == "log"]
    assert any(m.startswith("re-attaching to OpenAI job ftjob-") for m in messages)
    remote = [e["remote_id"] for e in read_events(run.events_path) if e["type"] == "log" and "remote_id" in e]
    assert len(remote) == len(set(remote))
    assert_no_key_under(ftui_home)


def test_training_not_available_explains_and_offers_the_local_command(standin, ftui_home):
    standin.add_fault("POST", r"/fine_tuning/jobs$", "status", status=403, code="training_not_available",
                      message="Fine-tuning is not available for your organization.")
    res = run_cli("train", "--preset", "demo", "--backend", "openai", *FAST, env=standin.env())
    assert res.returncode == 1
    assert "ftui train --preset demo --backend local" in res.stdout
    assert "2027-01-06" in res.stdout and "Traceback" not in res.stdout + res.stderr
    run = Run(next((ftui_home / "runs").iterdir()))
    st = run.status()
    assert st["state"] == "failed" and "training_not_available" in st["message"]
    assert standin.created_jobs() == []
    assert all(f.get("deleted") for f in standin.files.values())  # the uploads were removed
    assert_no_key_under(ftui_home)


@pytest.mark.parametrize("status", [429, 500])
def test_a_transient_error_is_retried_then_succeeds(standin, ftui_home, status):
    standin.add_fault("POST", r"/fine_tuning/jobs$", "status", status=status, times=1,
                      message="Rate limit reached" if status == 429 else "The server had an error")
    standin.add_fault("GET", r"/jobs/ftjob-\d+$", "status", status=status, times=2)
    standin.add_fault("POST", r"/chat/completions$", "status", status=status, times=3)
    run = start_detached(standin)
    assert wait_for(run) == "succeeded", (run.dir / "runner.log").read_text()[-2000:]
    assert steps(run) == list(range(1, 301))
    assert len(standin.created_jobs()) == 1  # the failed create was not repeated into a second job
    assert all(m["metrics"]["valid"] is not None for m in run.eval_metrics().values())
    assert all(m["failed_requests"] == 0 for m in run.eval_metrics().values())
    assert_no_key_under(ftui_home)


def test_a_failed_job_carries_openais_message(standin, ftui_home):
    standin.fail_at_step = 30
    standin.fail_error = {"code": "invalid_training_file", "message": "The training file has too many tokens."}
    run = start_detached(standin)
    assert wait_for(run) == "failed"
    st = run.status()
    assert "The training file has too many tokens." in st["message"] and "invalid_training_file" in st["message"]
    assert not (run.dir / "eval").exists()
    assert "Traceback" not in st["message"]
    assert_no_key_under(ftui_home)


def test_a_slow_answer_times_out_and_is_retried(standin, ftui_home):
    # request_timeout_s is 2: the first answer to job creation takes 5 s, one poll 3 s.
    standin.add_fault("POST", r"/fine_tuning/jobs$", "delay", delay_s=5.0)
    standin.add_fault("GET", r"/jobs/ftjob-\d+$", "delay", delay_s=3.0)
    run = start_detached(standin)
    assert wait_for(run, timeout=90) == "succeeded", (run.dir / "runner.log").read_text()[-2000:]
    assert steps(run) == list(range(1, 301))
    # The slow create reached the server after ftui had given up on it and created the job
    # again: the late duplicate was cancelled before it trained a step.
    jobs = sorted(standin.created_jobs(), key=lambda j: j["_step"])
    followed = json.loads((run.dir / "job.json").read_text())
    assert [j["status"] for j in jobs if j["id"] != followed["job_id"]] in ([], ["cancelled"])
    assert all(j["_step"] == 0 for j in jobs if j["id"] != followed["job_id"])
    assert followed["duplicates_cancelled"] == [j["id"] for j in jobs if j["id"] != followed["job_id"]]


def test_an_endpoint_that_never_answers_fails_the_run_clearly(standin, ftui_home):
    standin.add_fault("POST", r"/files$", "delay", delay_s=3.0, times=99)
    run = start_detached(standin, "--set", "max_retries=1")
    assert wait_for(run, timeout=90) == "failed"
    message = run.status()["message"]
    assert "uploading train.jsonl" in message and "no answer from OpenAI in time" in message
    assert standin.created_jobs() == []


def test_eval_only_reruns_through_chat_completions(standin):
    run = start_detached(standin)
    assert wait_for(run) == "succeeded"
    before = standin.completions
    res = run_cli("eval", run.id, "--variant", "finetuned", "--limit", "5", "--json",
                  env={**standin.env(), "FTUI_EVAL_PROGRESS_S": "0"})  # every answer reports
    assert res.returncode == 0, res.stderr
    assert standin.completions == before + 5
    assert json.loads(res.stdout)["eval"]["finetuned"]["exact"] == 1.0
    progress = [e for e in read_events(run.events_path) if e["type"] == "eval_progress" and e["total"] == 5]
    done = [e["done"] for e in progress]
    assert done[0] == 0 and done[-1] == 5 and done == sorted(done), done
    assert all(e["variant"] == "finetuned" and e["examples_per_s"] > 0 for e in progress[1:])
