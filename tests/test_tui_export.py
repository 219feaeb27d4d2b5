"""The export modal's model choices: ``ftui export RUN --model KIND`` runs as a child process
(the TUI never imports torch) and the modal shows what it wrote, or why it refused."""

from __future__ import annotations

import json

from ftui.core.runs import write_json_atomic
from ftui.tui.app import FtuiApp

from test_tui import RUN_A, fake_services, make_run, screen_text, wait_until


async def _export(app, pilot, choice: str):
    from textual.widgets import Select

    await pilot.press("x")
    await wait_until(pilot, lambda: type(app.screen).__name__ == "ExportModal")
    modal = app.screen
    modal.query_one("#export-format", Select).value = choice
    await pilot.pause()
    await pilot.press("ctrl+s")
    return modal


async def test_the_modal_exports_the_adapter_with_its_card_through_the_cli(ftui_home):
    run = make_run(ftui_home, RUN_A, model="HuggingFaceTB/SmolLM2-135M-Instruct")
    run.adapter_path.mkdir()
    write_json_atomic(run.adapter_path / "adapter_config.json",
                      {"peft_type": "LORA", "base_model_name_or_path": "/somewhere/models/smollm2-135m"})
    (run.adapter_path / "adapter_model.safetensors").write_bytes(b"weights")
    app = FtuiApp(attach=run, services=fake_services())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "data", None) is not None)
        assert "adapter adapter/" in screen_text(app)  # the Eval screen says where the model is
        modal = await _export(app, pilot, "adapter")
        assert modal.query_one("#export-path").value == str(run.dir / "export" / "adapter")
        await wait_until(pilot, lambda: modal.written is not None, timeout=60, what="the export child")
        assert "wrote adapter to" in screen_text(app)
        folder = run.dir / "export" / "adapter"
        assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == \
            "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert "| finetuned |" in (folder / "README.md").read_text()  # the run's eval table
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "EvalScreen")
        await wait_until(pilot, lambda: "export adapter export/adapter/" in screen_text(app), what="head")


async def test_an_openai_run_says_its_model_lives_at_openai(ftui_home):
    run = make_run(ftui_home, RUN_A, backend="openai", model="gpt-4.1-nano-2025-04-14")
    write_json_atomic(run.dir / "job.json", {"fine_tuned_model": "ft:gpt-4.1-nano:org::abc123"})
    app = FtuiApp(attach=run, services=fake_services())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "data", None) is not None)
        modal = await _export(app, pilot, "merged")
        await wait_until(pilot, lambda: "could not export" in screen_text(app), timeout=60, what="the refusal")
        text = " ".join(screen_text(app).split())
        assert "OpenAI" in text and "abc123" in text
        assert modal.written is None
