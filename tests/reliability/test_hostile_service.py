"""A hostile OpenAI endpoint (the tests' stand-in server, never the real service): 429 bursts,
500s, truncated or malformed JSON, very slow answers and dropped connections. Each run ends in
the right state with a clear message, never with a second job, and never writes the key."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ftui.core.events import read_events
from ftui.core.runs import Run

from conftest import run_cli
from openai_standin import API_KEY, StandIn

FAST = ["--set", "poll_interval_s=0.05", "--set", "request_timeout_s=2", "--set", "max_retries=3",
        "--set", "eval.limit=8"]
JOB = r"/fine_tuning/jobs/ftjob-\d+$"


@pytest.fixture
def standin():
    server = StandIn().start()
    yield server
    server.stop()


def start(standin: StandIn, *extra: str) -> Run:
    res = run_cli("train", "--preset", "demo", "--backend", "openai", "--detach", "--json", *FAST, *extra,
                  env=standin.env())
    assert res.returncode == 0, res.stderr
    return Run(Path(json.loads(res.stdout)["dir"]))


def wait_for(run: Run, timeout=120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run.status()["state"]
        if state in ("succeeded", "failed", "cancelled"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"run still {run.status()}: {(run.dir / 'runner.log').read_text()[-2000:]}")


def no_key_anywhere(home: Path) -> None:
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert API_KEY.encode() not in path.read_bytes(), path


def each_step_once(run: Run) -> None:
    steps = [e["step"] for e in read_events(run.events_path) if e["type"] == "train"]
    assert steps == list(range(1, 301)), steps[:5]


# Faults the run must ride out: (method, path, kind, times, extra).
SURVIVABLE = {
    "429 bursts (polls and job creation)": [("GET", JOB, "status", 6, {"status": 429}),
                                            ("POST", r"/fine_tuning/jobs$", "status", 2, {"status": 429})],
    "500s on every endpoint": [("POST", r"/files$", "status", 2, {}), ("GET", JOB, "status", 3, {}),
                               ("GET", JOB + "/events", "status", 2, {}), ("POST", r"/chat/completions$", "status", 3, {})],
    "truncated and malformed JSON": [("GET", JOB, "truncated", 2, {}), ("GET", JOB + "/events", "truncated", 1, {}),
                                     ("GET", JOB, "malformed", 2, {}), ("GET", r"/checkpoints$", "malformed", 1, {})],
    "dropped connections (polls, completions, job creation)": [
        ("GET", JOB, "drop", 3, {}), ("POST", r"/chat/completions$", "drop", 2, {}),
        ("POST", r"/fine_tuning/jobs$", "drop", 1, {})],
    "very slow answers": [("GET", JOB, "delay", 2, {"delay_s": 3.0}), ("POST", r"/files$", "delay", 1, {"delay_s": 3.0})],
}


@pytest.mark.parametrize("name", sorted(SURVIVABLE))
def test_the_run_survives(standin, ftui_home, name):
    for method, path, kind, times, extra in SURVIVABLE[name]:
        standin.add_fault(method, path, kind, times=times, **extra)
    run = start(standin)
    assert wait_for(run) == "succeeded", (run.dir / "runner.log").read_text()[-2000:]
    each_step_once(run)
    assert sum(1 for j in standin.created_jobs() if j["status"] != "cancelled") == 1
    assert set(run.eval_metrics()) == {"base", "kshot", "finetuned"}
    no_key_anywhere(ftui_home)


# Faults that must end the run, with the message that says why: (faults, state, words).
FATAL = {
    "401 bad key": ([("POST", r"/files$", "status", 1, {"status": 401, "code": "invalid_api_key",
                                                       "message": "Incorrect API key provided: sk-te***1a."})],
                    ["HTTP 401", "invalid_api_key", "Check OPENAI_API_KEY"]),
    "500 that never ends": ([("GET", JOB, "status", 999, {})],
                            ["reading the job", "HTTP 500"]),
    "malformed JSON forever on create": ([("POST", r"/fine_tuning/jobs$", "malformed", 999, {})],
                                         ["creating the fine-tuning job", "not the JSON expected"]),
    "model does not exist": ([("POST", r"/fine_tuning/jobs$", "status", 1, {"status": 400, "code": "model_not_available",
                                                                           "message": "Model gpt-9 is not available for fine-tuning."})],
                             ["HTTP 400", "not available for fine-tuning"]),
}


@pytest.mark.parametrize("name", sorted(FATAL))
def test_the_run_fails_clearly(standin, ftui_home, name):
    faults, words = FATAL[name]
    for method, path, kind, times, extra in faults:
        standin.add_fault(method, path, kind, times=times, **extra)
    run = start(standin, "--set", "outage_limit_s=3")
    assert wait_for(run) == "failed"
    message = run.status()["message"]
    for word in words:
        assert word in message, message
    assert "Traceback" not in message
    assert len(standin.created_jobs()) <= 1
    errors = [e for e in read_events(run.events_path) if e["type"] == "error"]
    assert errors and errors[-1]["message"].startswith(message[:40])
    no_key_anywhere(ftui_home)
