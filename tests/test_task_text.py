"""The text task and the shared output cleanup ``strip_fence``."""

from __future__ import annotations

import pytest

from ftui.core.errors import ConfigError
from ftui.core.tasks import make_task
from ftui.core.tasks.text import TextTask, normalize_text, strip_fence


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("  answer \n", "answer"),
        ("```\nanswer\n```", "answer"),
        ("```json\n{\"a\": 1}\n```\n", '{"a": 1}'),
        ("```sql\nSELECT 1", "SELECT 1"),  # cut off before the closing fence
        ("```answer```", "answer"),
        ("Here it is: ```x```", "Here it is: ```x```"),  # fence inside prose stays
        ("a ``` b", "a ``` b"),
    ],
)
def test_strip_fence(raw: str, cleaned: str) -> None:
    assert strip_fence(raw) == cleaned


def test_normalize_text_strips_edges_only() -> None:
    assert normalize_text('  "The  U.S.A.!" ') == "the u.s.a"
    assert normalize_text("don't") != normalize_text("dont")


def test_exact_and_normalized() -> None:
    task = TextTask()
    exact = task.score("  Paris\n", "Paris", {})
    assert exact.valid and exact.exact and exact.details["normalized"]
    loose = task.score("paris.", "Paris", {})
    assert loose.valid and not loose.exact and loose.details["normalized"]
    wrong = task.score("Lyon", "Paris", {})
    assert not wrong.exact and not wrong.details["normalized"]


def test_fenced_answer_is_exact() -> None:
    assert TextTask().score("```\nParis\n```", "Paris\n", {}).exact


def test_valid_regex_through_make_task() -> None:
    task = make_task("text", {"valid_regex": "(yes|no)"})
    assert task.score(" yes ", "no", {}).valid
    s = task.score("maybe yes", "yes", {})
    assert not s.valid and s.error is not None and "(yes|no)" in s.error


def test_aggregate_by_hand() -> None:
    task = TextTask(valid_regex=r"[A-Z][a-z]+")
    scores = [
        task.score("Paris", "Paris", {}),
        task.score("paris", "Paris", {}),
        task.score("Lyon", "Paris", {}),
        task.score("", "Paris", {}),
    ]
    metrics = task.aggregate(scores)
    assert list(metrics) == list(task.metric_keys)
    assert metrics == {"valid": 0.5, "exact": 0.25, "normalized": 0.5}
    # Without a validity rule there is no valid rate: every answer would count as valid.
    assert TextTask().aggregate([]) == {"exact": 0.0, "normalized": 0.0}
    assert TextTask().metric_keys == ("exact", "normalized")


@pytest.mark.parametrize("options", [{"valid_regex": "(unclosed"}, {"valid_regex": 3}, {"x": 1}])
def test_bad_options_are_config_errors(options: dict) -> None:
    with pytest.raises(ConfigError):
        make_task("text", options)


def test_a_registered_task_is_made_and_accepted_by_the_config(monkeypatch) -> None:
    import dataclasses

    import ftui.core.tasks as tasks
    from ftui.core.presets import load_preset

    assert tasks.TASK_NAMES == ("sql", "funcrep", "json", "text")
    with pytest.raises(ConfigError, match="unknown task 'shout'; choose one of: sql, funcrep, json, text"):
        make_task("shout")
    with pytest.raises(ConfigError, match="task: must be one of"):
        dataclasses.replace(load_preset("demo"), task="shout")
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))  # the registration ends with the test

    class Shout(TextTask):
        pass

    tasks.register_task("shout", Shout)
    assert isinstance(make_task("shout", {"valid_regex": "[A-Z]+"}), Shout)
    assert "shout" in tasks.task_names()
    assert dataclasses.replace(load_preset("demo"), task="shout").task == "shout"
    with pytest.raises(ConfigError, match="task: must be one of"):
        dataclasses.replace(load_preset("demo"), task="whisper")
