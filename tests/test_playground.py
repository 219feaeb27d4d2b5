"""The Playground: prompts as eval builds them, the task's verdict, streaming that gives eval's
tokens, the screen on a finished tiny-model run, and an inference process that never outlives
its viewer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftui.core.examples import Example
from ftui.core.playground import edited, judge, playground_plan, prompts, template_fields
from ftui.core.runs import Run, create_run
from ftui.runner.launch import child_env
from test_local_eval import DEMO, demo_examples, demo_prompts, lively_model, loaded  # noqa: F401 - fixtures


def make_run(model: Path, *, adapter: bool = True, max_new_tokens: int = 6) -> Run:
    spec = {
        "preset": "demo", "task": "sql", "task_options": {},
        "prompt": {"system": DEMO.prompt.system, "user": DEMO.prompt.user},
        "split": {"seed": 7, "val": 0, "test": 4},
        "backend": "local", "model": str(model),
        "hyperparameters": {"quantization": "none"},
        "eval": {"max_new_tokens": max_new_tokens, "k": 2, "limit": 0, "batch_size": 4},
    }
    run = create_run(label="play", spec=spec, splits={"train": demo_examples(10, start=100), "val": [],
                                                      "test": demo_examples(4)})
    if adapter:
        import peft
        import torch
        import transformers

        torch.manual_seed(0)
        base = transformers.AutoModelForCausalLM.from_pretrained(model)
        config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        peft.get_peft_model(base, config).save_pretrained(run.dir / "adapter")
    run.write_status("succeeded", message="done")
    return run


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its parent counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith(("Z", "X"))
    except (OSError, IndexError):
        return True


def wait_gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return False


class InstantInference:
    """The Playground's inference process, answering at once with fixed text (no model)."""

    ANSWERS = {"base": "The oldest singer is", "kshot": "SELECT name FROM singer ORDER BY age LIMIT 1",
               "finetuned": "SELECT name FROM singer ORDER BY age DESC LIMIT 1"}

    def __init__(self, run, on_event) -> None:
        self.on_event, self.pid = on_event, None
        on_event({"event": "ready", "variants": list(self.ANSWERS), "describe": "cpu, float32, adapter unmerged",
                  "load_s": 0.42, "import_s": 4.1})

    def generate(self, rid, prompts, *, max_new_tokens):
        for variant, text in self.ANSWERS.items():
            for n, word in enumerate(text.split(), 1):
                self.on_event({"event": "partial", "id": rid, "variant": variant, "text": " ".join(text.split()[:n])})
            self.on_event({"event": "done", "id": rid, "variant": variant, "text": text, "tokens": len(text.split()),
                           "first_token_s": 0.21, "total_s": 0.9})
        return True

    def prime(self, rid, prompts):
        return True

    def stop(self):
        return True

    def close(self):
        pass


def with_weights(run: Run) -> Run:
    """A hand-written fixture run (tests/test_tui.py) with held-out and training data and an
    adapter folder (never loaded: for ``InstantInference``)."""
    from test_tui import EXAMPLES

    rows = [Example(fields={"question": q, "context": c}, reference=r, line=i + 1).to_json()
            for i, (q, c, r) in enumerate(EXAMPLES)]
    for split in ("train", "test"):
        (run.dir / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run.dir / "adapter").mkdir()
    (run.dir / "adapter" / "adapter_config.json").write_text("{}")
    return run


# -- without a model -----------------------------------------------------------------------
def test_prompts_are_evals_and_the_sql_verdict_shows_rows(tiny_model):
    run = make_run(tiny_model, adapter=False)
    plan = playground_plan(run)
    example = plan.examples[1]
    assert template_fields(plan, example) == ["question", "context"]  # the question is typed, tables prefilled
    for variant in ("base", "kshot", "finetuned"):
        assert prompts(plan, example)[variant] == plan.prompts(variant)[1]  # exactly eval's prompt
    assert len(prompts(plan, example)["kshot"]) == len(prompts(plan, example)["base"]) + 4  # two shots

    mine = edited(example, {"question": "How many rows?"})
    assert "Question: How many rows?" in prompts(plan, mine)["base"][-1]["content"]

    right = judge(plan, example.reference, example, unedited=True)
    assert right.valid and right.correct and right.shows_rows and right.columns and not right.result_error
    wrong = judge(plan, "SELECT name FROM nowhere", mine, unedited=False)
    assert wrong.valid is False and wrong.correct is None and "nowhere" in (wrong.error or "")
    assert wrong.result_error and not wrong.rows


def test_ftui_try_refuses_a_run_without_weights_and_an_unknown_run(tiny_model, capsys):
    from ftui.cli.main import main

    run = make_run(tiny_model, adapter=False)
    assert main(["try", run.id]) == 2
    assert f"run {run.id} has no trained weights yet" in capsys.readouterr().err
    assert main(["try", "no-such-run"]) == 2
    assert "no run matches 'no-such-run'" in capsys.readouterr().err


# -- the screen and the process --------------------------------------------------------------
async def test_playground_streams_three_answers_with_badges_and_its_process_ends_with_the_screen(tiny_model):
    from test_tui import screen_text, wait_until

    from ftui.tui.app import FtuiApp
    from ftui.tui.screens.playground import PlaygroundScreen
    from ftui.tui.screens.runs import RunsScreen

    run = make_run(tiny_model)
    app = FtuiApp(playground=run)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, PlaygroundScreen), what="the Playground")
        screen = app.screen
        await wait_until(pilot, lambda: screen.ready is not None or screen.failed, timeout=60, what="models loaded")
        assert not screen.failed, screen.failed
        assert screen.query_one("#field-context").text == run.examples("test")[0].fields["context"]
        screen.query_one("#field-main").value = ""
        await pilot.press(*"How many heads?", "enter")
        await wait_until(pilot, lambda: len(screen.answers) == 3 and all(
            a.verdict is not None for a in screen.answers.values()), timeout=60, what="three judged answers")
        text = screen_text(app)
        assert "base" in text and "k-shot (2 shots)" in text and "fine-tuned" in text
        assert text.count("valid") >= 3  # a badge under each answer
        assert "first token" in text and "loaded in" in text
        assert all(a.tokens >= 1 and a.first_token_s is not None for a in screen.answers.values())
        assert screen.history[-1]["question"] == "How many heads?"
        pid = screen.server.pid

        await pilot.press("pagedown")  # the next held-out example, then back to what was typed
        assert screen.query_one("#field-main").value == run.examples("test")[1].fields["question"]
        await pilot.press("up")
        assert screen.query_one("#field-main").value == "How many heads?"

        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen), what="back on Runs")
        assert wait_gone(pid, timeout=10)


def test_the_inference_process_ends_when_its_viewer_is_killed(tiny_model, tmp_path):
    run = make_run(tiny_model, adapter=False)
    viewer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from pathlib import Path\nfrom ftui.core.runs import Run\n"
         "from ftui.runner.serve_client import InferenceServer\n"
         f"server = InferenceServer(Run(Path({str(run.dir)!r})), lambda e: print(e.get('event'), flush=True))\n"
         "server.start()\n"
         "print(server.pid, flush=True)\n"
         "time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        server = int(viewer.stdout.readline())
        assert viewer.stdout.readline().strip() == "ready"  # the model is loaded and waiting
        assert not gone(server)
        viewer.send_signal(signal.SIGKILL)
        viewer.wait()
        assert wait_gone(server), "the inference process outlived its killed viewer"
    finally:
        viewer.kill()
        viewer.wait()


async def test_t_opens_the_playground_from_runs_and_eval_and_not_for_a_run_without_weights(ftui_home):
    from test_tui import RUN_A, RUN_B, fake_services, make_run as fixture_run, wait_until

    from ftui.tui.app import FtuiApp

    with_weights(fixture_run(ftui_home, RUN_A))
    fixture_run(ftui_home, RUN_B, created=1795001000.0)  # newer, no weights: first in the table
    app = FtuiApp(services=fake_services(start_inference=InstantInference))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("R")
        await wait_until(pilot, lambda: len(getattr(app.screen, "runs", [])) == 2, what="the runs")
        await pilot.press("t")  # RUN_B: no trained weights, the key does nothing
        assert type(app.screen).__name__ == "RunsScreen"
        await pilot.press("down", "t")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PlaygroundScreen", what="the Playground")
        assert app.screen.run.id == RUN_A
        await pilot.press("escape", "enter")  # back, and the run's Eval screen
        await wait_until(pilot, lambda: type(app.screen).__name__ == "EvalScreen", what="the Eval screen")
        await pilot.press("t")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PlaygroundScreen", what="the Playground")


@pytest.mark.parametrize("method", ["lora", "prefix", "full"])
def test_the_players_answers_are_evals_for_each_method(method, lively_model, loaded):
    """One base model: the adapter unmerged (base and k-shot with it switched off), prefix
    tuning's virtual tokens kept, full fine-tuning's model/ loaded beside it; each answer is
    what eval's one-at-a-time generation gives, also when the cache of the last prompt is reused
    (the prompts share their system message)."""
    import torch

    from ftui.backends.local.generate import generate_one_at_a_time
    from ftui.backends.local.play import LocalPlayer
    from test_local_eval import make_run as eval_run
    from test_methods_generate import tuned

    base, tok = loaded
    run = eval_run(lively_model, n_test=3)
    model = tuned(method, lively_model, run.model_path)  # full fine-tuning writes model/ itself
    if method != "full":
        model.save_pretrained(run.adapter_path)
    chosen = demo_prompts(3)
    threads = torch.get_num_threads()
    try:
        player = LocalPlayer(run, device="cpu")
        assert player.variants == ("base", "kshot", "finetuned")
        answers = {v: [list(player.stream(v, p, max_new_tokens=8, should_stop=lambda: False)) or [""]
                       for p in chosen] for v in ("finetuned", "base")}
    finally:
        torch.set_num_threads(threads)
    expected_tuned = [t for t, _ in generate_one_at_a_time(model, tok, chosen, max_new_tokens=8)]
    expected_base = [t for t, _ in generate_one_at_a_time(base, tok, chosen, max_new_tokens=8)]
    assert [steps[-1] for steps in answers["finetuned"]] == expected_tuned
    assert [steps[-1] for steps in answers["base"]] == expected_base
    assert expected_tuned != expected_base
    for steps in answers["finetuned"] + answers["base"]:  # token by token, each answer growing
        assert all(later.startswith(earlier) for earlier, later in zip(steps, steps[1:]) if earlier)
