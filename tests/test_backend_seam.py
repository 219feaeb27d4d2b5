"""A third backend, written and registered by this test alone (one class, one registry call),
runs end to end: ``ftui train --backend echo`` through the detached runner, the shared eval
loop, ``ftui show`` and the TUI's Runs screen. Nothing else in ftui knows it exists."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli, write_jsonl

PLUGIN = textwrap.dedent('''
    """A backend that learns nothing: its fine-tuned model answers the reference."""
    from dataclasses import dataclass

    from ftui.backends.base import Answer, Answered, Trained
    from ftui.core.backends import BackendFacts, register


    @dataclass(frozen=True)
    class EchoSettings:
        model: str = "echo-1"
        steps: int = 3


    class EchoAnswerer:
        def __init__(self, plan):
            self.plan = plan

        def describe(self, variant):
            return "by echoing"

        def answer(self, variant, prompts, *, on_progress, should_stop):
            texts = [ex.reference if variant == "finetuned" else "" for ex in self.plan.examples]
            on_progress(len(texts))
            return Answered([Answer(t) for t in texts], {"model": "echo-1"})

        def after(self, variant, answered, events):
            pass

        def close(self):
            pass


    class EchoBackend:
        def train(self, run, job):
            job.set_state("running", "echoing")
            steps = run.spec.hyperparameters.steps
            for step in range(1, steps + 1):
                job.events.write("train", step=step, total_steps=steps, epoch=step / steps, loss=1.0 / step,
                                 lr=None, tokens=10 * step, tokens_per_s=100.0)
            return Trained("succeeded")

        def answerer(self, run, plan, variants):
            return EchoAnswerer(plan)


    BACKEND = EchoBackend()
    register(BackendFacts("echo", "Echo", EchoSettings, __name__))
''')


@pytest.fixture
def echo_plugin(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "echo_backend.py").write_text(PLUGIN)
    monkeypatch.setenv("FTUI_PLUGINS", "echo_backend")
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("echo_backend", None)
    from ftui.core import backends

    backends._REGISTRY.pop("echo", None)


def test_a_third_backend_runs_end_to_end_through_runner_cli_show_and_tui(tmp_path, echo_plugin, ftui_home):
    rows = [{"input": f"Say {w}.", "output": w} for w in ["red", "green", "blue", "pink", "grey"] * 4]
    data = write_jsonl(tmp_path / "words.jsonl", rows)
    res = run_cli("train", "--data", str(data), "--task", "text", "--backend", "echo", "--set", "steps=4",
                  "--set", "split.test=4", "--set", "split.val=2", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    run_dir = Path(info["dir"])
    assert info["status"] == "succeeded", (run_dir / "runner.log").read_text()[-2000:]
    assert info["backend"] == "echo" and info["model"] == "echo-1" and info["step"] == 4
    assert info["eval"]["finetuned"]["exact"] == 1.0 and info["eval"]["base"]["exact"] == 0.0
    assert set(info["eval"]) == {"base", "kshot", "finetuned"}
    shown = json.loads(run_cli("show", info["id"], "--json").stdout)
    assert shown["backend"] == "echo" and shown["status"] == "succeeded"
    assert json.loads((run_dir / "run.json").read_text())["hyperparameters"] == {"model": "echo-1", "steps": 4}
    # an unknown setting of the new backend is refused before a run exists, naming its settings
    res = run_cli("train", "--data", str(data), "--task", "text", "--backend", "echo", "--set", "lora_r=8")
    assert res.returncode == 2 and "steps" in res.stderr and "Traceback" not in res.stderr

    import asyncio

    asyncio.run(_runs_screen_shows(info["id"]))


async def _runs_screen_shows(run_id: str) -> None:
    from test_tui import fake_services, screen_text, wait_until

    import echo_backend  # noqa: F401 - registers in this process, as FTUI_PLUGINS does for ftui
    from ftui.tui.app import FtuiApp

    app = FtuiApp(services=fake_services())
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("R")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunsScreen" and app.screen.runs,
                         what="the runs table")
        assert [r.id for r in app.screen.runs] == [run_id]
        text = screen_text(app)
        assert "echo" in text and "succeeded" in text and "100%" in text
