"""``ftui predict``: a finished tiny-model run with an adapter on new rows, as a real subprocess."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import run_cli, write_jsonl
from ftui.core.presets import load_preset, sample_path
from ftui.core.runs import create_run

DEMO = load_preset("demo")


def demo_rows(n: int, start: int = 0) -> list[dict]:
    with open(sample_path(DEMO), encoding="utf-8") as f:
        return [json.loads(line) for line in f][start:start + n]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """One FTUI_HOME for the module's runs (the autouse one is per test)."""
    return tmp_path_factory.mktemp("predict-home")


SPEC = {
    "preset": "demo", "task": "sql", "task_options": {},
    "prompt": {"system": DEMO.prompt.system, "user": DEMO.prompt.user},
    "split": {"seed": 7, "val": 0, "test": 2}, "backend": "local",
    "hyperparameters": {"quantization": "none"},
    "eval": {"max_new_tokens": 4, "k": 2, "limit": 0, "batch_size": 16},
}


def make_run(home: Path, model: Path, label: str):
    from ftui.core.examples import Example

    examples = [Example(fields={"question": r["question"], "context": r["context"]}, reference=r["answer"], line=i)
                for i, r in enumerate(demo_rows(12, start=100), start=1)]
    return create_run(label=label, spec={**SPEC, "model": str(model)}, root=home / "runs",
                      splits={"train": examples[:10], "val": [], "test": examples[10:]})


@pytest.fixture(scope="module")
def tuned_run(tiny_model, home):
    """A demo-shaped sql run on the tiny Llama with a random LoRA adapter: a finished run,
    without the minutes of training one."""
    import peft
    import torch
    import transformers

    run = make_run(home, tiny_model, "predict-test")
    torch.manual_seed(0)
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft.get_peft_model(base, config).save_pretrained(run.adapter_path)
    run.write_status("succeeded")
    return run


def cli(home: Path, *args: str):
    return run_cli(*args, env={"FTUI_HOME": str(home), "FTUI_EVAL_PROGRESS_S": "0"})


def in_process(home: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``ftui ARGS`` in this process: torch is loaded once for the module, not per command."""
    from ftui.cli.main import main

    monkeypatch.setenv("FTUI_HOME", str(home))
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_NO_ADVISORY_WARNINGS"):  # set by the command
        monkeypatch.setenv(name, "1")
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_predicts_200_unlabelled_rows_with_progress(tuned_run, home, tmp_path):
    rows = [{"question": r["question"], "context": r["context"]} for r in demo_rows(200)]
    data = write_jsonl(tmp_path / "new-questions.jsonl", rows)
    result = cli(home, "predict", tuned_run.id, "--data", str(data))
    assert result.returncode == 0, result.stderr
    out = tuned_run.dir / "predict" / "new-questions-finetuned.jsonl"
    assert str(out) in result.stdout
    # progress lines on stderr (not a terminal): the start, batches as they finish, the end
    progress = [line for line in result.stderr.splitlines() if line.startswith("predict finetuned ")]
    assert progress[0].startswith("predict finetuned 0/200") and progress[-1].startswith("predict finetuned 200/200")
    assert len(progress) > 3 and any("rows/s" in line and "ETA" in line for line in progress[:-1])
    written = read_jsonl(out)
    assert [r["line"] for r in written] == list(range(1, 201))
    assert all(set(r) == {"line", "question", "context", "prediction", "valid", "error"} for r in written)
    assert written[7]["question"] == rows[7]["question"]
    assert all(isinstance(r["valid"], bool) for r in written)  # sql judges validity without a reference
    assert "labelled   none" in result.stdout and "rows/s" in result.stdout


def test_bad_rows_are_reported_by_line_and_skipped(tuned_run, home, tmp_path, monkeypatch, capsys):
    good = [{"question": r["question"], "context": r["context"]} for r in demo_rows(6)]
    lines = [json.dumps(good[0]), "{not json", json.dumps(good[1]), json.dumps({"question": "no tables?"}),
             "", json.dumps(good[2]), "[1, 2]", json.dumps(good[3])]
    data = tmp_path / "mixed.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "mixed-out.jsonl"
    code, stdout, stderr = in_process(home, monkeypatch, capsys, "predict", tuned_run.id, "--data", str(data),
                                      "--variant", "base", "--out", str(out), "--json")
    assert code == 0, stderr
    assert "skipping 3 bad row(s):" in stderr
    assert "line 2: not valid JSON" in stderr
    assert "line 4: field 'context' missing" in stderr
    assert "line 7: expected a JSON object" in stderr
    summary = json.loads(stdout)
    assert summary["rows"] == 4 and [s["line"] for s in summary["skipped"]] == [2, 4, 7]
    assert [r["line"] for r in read_jsonl(out)] == [1, 3, 6, 8]


def test_labelled_rows_get_the_tasks_metrics(tuned_run, home, tmp_path, monkeypatch, capsys):
    rows = demo_rows(5, start=300)
    data = tmp_path / "labelled.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["q", "context", "answer"])
        w.writeheader()
        for i, r in enumerate(rows):  # the last row unlabelled: an empty cell
            w.writerow({"q": r["question"], "context": r["context"], "answer": r["answer"] if i < 4 else ""})
    code, stdout, stderr = in_process(home, monkeypatch, capsys, "predict", tuned_run.id, "--data", str(data),
                                      "--field", "question=q", "--variant", "kshot", "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["rows"] == 5 and summary["labelled"] == 4
    assert set(summary["metrics"]) == {"valid", "exact", "execution", "execution_strict"}
    written = read_jsonl(Path(summary["out"]))
    assert Path(summary["out"]).name == "labelled-kshot.jsonl"
    assert [r["line"] for r in written] == [2, 3, 4, 5, 6]  # CSV lines, the header being line 1
    assert all({"reference", "exact", "execution", "correct"} <= set(r) for r in written[:4])
    assert "reference" not in written[4] and "correct" not in written[4]
    assert written[0]["reference"] == rows[0]["answer"]
    # the labelled lines are a file `ftui score` reads, and it agrees with the summary
    scored = tmp_path / "scored.jsonl"
    write_jsonl(scored, written[:4])
    code, stdout, stderr = in_process(home, monkeypatch, capsys, "score", "--task", "sql", str(scored), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["metrics"] == summary["metrics"]


@pytest.mark.parametrize("case", ["unknown run", "no such file", "no usable row", "no column", "limit", "no weights"])
def test_bad_input_exits_2_with_a_message(tuned_run, home, tmp_path, case):
    data = write_jsonl(tmp_path / "rows.jsonl", [{"question": "how many?", "context": "CREATE TABLE t (a INT)"}])
    run = tuned_run.id
    args = ["--data", str(data)]
    if case == "unknown run":
        run = "no-such-run"
    elif case == "no such file":
        args = ["--data", str(tmp_path / "missing.jsonl")]
    elif case == "no usable row":
        write_jsonl(data, ["{oops", json.dumps({"question": "q", "context": 3})])
    elif case == "no column":
        write_jsonl(data, [{"text": "hello"}])
    elif case == "limit":
        args += ["--limit", "0"]
    elif case == "no weights":
        run = make_run(home, Path(tuned_run.spec.model), "untrained").id  # no adapter/
    result = cli(home, "predict", run, *args)
    assert result.returncode == 2, (case, result.stdout, result.stderr)
    assert result.stderr.startswith("ftui: error:") and "Traceback" not in result.stderr
    expected = {"unknown run": "no-such-run", "no such file": "no such file", "no usable row": "line 1",
                "no column": "--field", "limit": "--limit", "no weights": "no fine-tuned model"}[case]
    assert expected in result.stderr
    assert not (tuned_run.dir / "predict" / "rows-finetuned.jsonl").exists()


def test_an_openai_run_asks_its_fine_tuned_model_by_id(home, tmp_path):
    from openai_standin import StandIn

    from ftui.core.examples import Example
    from ftui.core.prompts import render_user

    model = "ft:gpt-4.1-nano-2025-04-14:org-standin:ftui:abc123"
    rows = demo_rows(6, start=200)
    train = [Example(fields={"question": r["question"], "context": r["context"]}, reference=r["answer"], line=i)
             for i, r in enumerate(demo_rows(4, start=100), start=1)]
    run = create_run(label="predict-openai", root=home / "runs", splits={"train": train, "val": [], "test": []},
                     spec={**SPEC, "backend": "openai", "model": "gpt-4.1-nano-2025-04-14",
                           "hyperparameters": {"request_timeout_s": 5, "max_retries": 1}})
    (run.dir / "job.json").write_text(json.dumps({"id": "ftjob-1", "fine_tuned_model": model}), encoding="utf-8")
    server = StandIn().start()
    try:
        server.jobs["ftjob-1"] = {"fine_tuned_model": model}  # the model exists at the stand-in
        server.answers = {render_user(Example(fields={"question": r["question"], "context": r["context"]},
                                              reference=""), DEMO.prompt): r["answer"] for r in rows}
        data = write_jsonl(tmp_path / "rows.jsonl", rows)
        result = run_cli("predict", run.id, "--data", str(data), "--json",
                         env={"FTUI_HOME": str(home), **server.env()})
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["rows"] == 6 and summary["metrics"]["exact"] == 1.0  # the ft: model's answers
        assert summary["backend"]["model"] == model and server.completions == 6
    finally:
        server.stop()


def test_an_interrupted_prediction_keeps_the_chunks_written(tuned_run, tmp_path):
    """Ctrl-C in the middle: every chunk answered before it is in the file, line by line."""
    from ftui.backends.base import Answer, Answered
    from ftui.backends.predict import predict_rows
    from ftui.core.predict import CHUNK_BATCHES, OutputFile, read_rows
    from ftui.core.tasks import make_task

    class Interrupted:
        calls = 0

        def describe(self, variant):
            return "here"

        def answer(self, variant, prompts, *, on_progress, should_stop):
            Interrupted.calls += 1
            if Interrupted.calls == 3:
                raise KeyboardInterrupt
            return Answered([Answer("SELECT 1") for _ in prompts])

        def close(self):
            Interrupted.closed = True

    class Backend:
        def answerer(self, run, plan, variants):
            return Interrupted()

    chunk = CHUNK_BATCHES * tuned_run.spec.eval.batch_size
    data = write_jsonl(tmp_path / "rows.jsonl", [{"question": r["question"], "context": r["context"]}
                                                 for r in demo_rows(3 * chunk)])
    rows = read_rows(tuned_run, data)
    out = OutputFile(tmp_path / "out.jsonl", make_task("sql"))
    with pytest.raises(KeyboardInterrupt):
        predict_rows(tuned_run, Backend(), rows, "finetuned", out, on_progress=lambda done: None)
    assert Interrupted.closed
    out.close()
    written = read_jsonl(tmp_path / "out.jsonl")
    assert [r["line"] for r in written] == list(range(1, 2 * chunk + 1)) and out.tally.rows == 2 * chunk
    assert all(r["prediction"] == "SELECT 1" and r["valid"] is True for r in written)


def test_unlabelled_rows_of_every_shape_are_read(tmp_path):
    """Chat rows ending in the user's turn and prompts without a completion are new data, not
    bad rows; a labelled file reads as before, and without need_reference nothing changes."""
    from ftui.core.data import load_file

    chat = write_jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "yo"}, {"role": "assistant", "content": "hey"}]},
        {"messages": [{"role": "assistant", "content": "no user"}]}])
    loaded = load_file(chat, "text", need_reference=False)
    assert [(e.line, e.reference, len(e.messages)) for e in loaded.examples] == [(1, "", 2), (2, "hey", 1)]
    assert [i.line for i in loaded.issues] == [3]
    assert [i.line for i in load_file(chat, "text").issues] == [1, 3]  # training data still needs answers
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "a"}, {"prompt": "b", "completion": "c"}])
    assert [e.reference for e in load_file(pairs, "text", need_reference=False).examples] == ["", "c"]


@pytest.mark.parametrize("task, options, output, valid", [
    ("funcrep", {}, "inform(name[Tetris], rating[good])", True),
    ("funcrep", {}, "inform(name[Tetris]", False),
    ("json", {"schema": {"type": "object", "required": ["a"]}}, '{"a": 1}', True),
    ("json", {"schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', False),
    ("text", {"valid_regex": "[0-9]+"}, "42", True),
    ("text", {}, "anything", None),  # no validity rule: not judged
])
def test_validity_is_judged_without_a_reference(task, options, output, valid):
    from ftui.core.tasks import make_task
    from ftui.core.tasks.base import judge_validity

    t = make_task(task, options)
    verdict, why = judge_validity(t, output, {})
    assert verdict is valid and (why is None) == (valid is not False)
    if valid is not None:  # the same verdict as scoring against any reference
        assert t.score(output, "x", {}).valid is valid
