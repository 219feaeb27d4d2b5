"""The json task: parse, JSON Schema validity, exact match and field agreement."""

from __future__ import annotations

import json

import pytest

from ftui.core.errors import ConfigError
from ftui.core.tasks import make_task
from ftui.core.tasks.jsontask import JsonTask

EMOTIONS = ["joy", "sadness", "anger", "fear", "surprise", "disgust", "gratitude", "neutral"]
SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["text", "emotion"],
        "properties": {
            "text": {"type": "string", "minLength": 1},
            "emotion": {"enum": EMOTIONS},
        },
        "additionalProperties": False,
    },
}
REF_ITEMS = [
    {"text": "I love it", "emotion": "joy"},
    {"text": "so sad", "emotion": "sadness"},
    {"text": "thanks a lot", "emotion": "gratitude"},
]
REF = json.dumps(REF_ITEMS)


@pytest.fixture
def task() -> JsonTask:
    return JsonTask(schema=SCHEMA)


def with_emotion(index: int, emotion: str) -> str:
    items = [dict(item) for item in REF_ITEMS]
    items[index]["emotion"] = emotion
    return json.dumps(items)


def test_valid_list_is_exact(task: JsonTask) -> None:
    s = task.score(REF, REF, {})
    assert s.valid and s.exact and s.error is None
    assert s.details["field_agree"] == {"text": 3, "emotion": 3}
    assert s.details["field_total"] == {"text": 3, "emotion": 3}


def test_make_task_takes_the_schema_as_json_text_from_a_preset() -> None:
    task = make_task("json", {"schema": json.dumps(SCHEMA)})
    assert task.score(REF, REF, {}).valid
    assert not task.score("[]", REF, {}).valid  # minItems 1


def test_emotion_outside_enum_names_the_path(task: JsonTask) -> None:
    s = task.score(with_emotion(1, "happy"), REF, {})
    assert not s.valid and not s.exact
    assert s.details["parses"] is True and s.details["schema_valid"] is False
    assert s.error is not None
    assert s.error.startswith("schema: 'happy' is not one of ['joy', 'sadness'")
    assert s.error.endswith(" at $[1].emotion")


def test_extra_property_is_a_schema_error(task: JsonTask) -> None:
    s = task.score('[{"text": "a", "emotion": "joy", "why": "smile"}]', REF, {})
    assert not s.valid
    assert s.error is not None and "'why' was unexpected" in s.error and s.error.endswith("$[0]")


def test_truncated_json_does_not_parse_and_agrees_on_nothing(task: JsonTask) -> None:
    s = task.score('[{"text": "I love it", "emotion": "joy"}, {"text": "so', REF, {})
    assert not s.valid and not s.exact and s.details["parses"] is False
    assert s.error == "not JSON: Unterminated string starting at line 1 column 52"
    assert s.details["field_agree"] == {"text": 0, "emotion": 0}
    assert s.details["field_total"] == {"text": 3, "emotion": 3}


def test_error_message_gives_line_and_column(task: JsonTask) -> None:
    s = task.score('{"text": "a" "emotion": "joy"}', REF, {})
    assert s.error == "not JSON: Expecting ',' delimiter at line 1 column 14"


def test_prose_is_not_json(task: JsonTask) -> None:
    s = task.score("The first text is joyful and the second is sad.", REF, {})
    assert not s.valid and s.details["parses"] is False
    assert s.error == "not JSON: Expecting value at line 1 column 1"


def test_fenced_json_is_exact(task: JsonTask) -> None:
    s = task.score(f"```json\n{json.dumps(REF_ITEMS, indent=2)}\n```", REF, {})
    assert s.valid and s.exact


def test_reordered_keys_are_still_exact(task: JsonTask) -> None:
    reordered = json.dumps([{"emotion": i["emotion"], "text": i["text"]} for i in REF_ITEMS])
    assert task.score(reordered, REF, {}).exact


def test_string_case_matters_for_exact_but_not_for_agreement(task: JsonTask) -> None:
    s = task.score(REF.replace("I love it", "i  LOVE it"), REF, {})
    assert s.valid and not s.exact
    assert s.details["field_agree"] == {"text": 3, "emotion": 3}


def test_one_emotion_differs(task: JsonTask) -> None:
    s = task.score(with_emotion(1, "neutral"), REF, {})
    assert s.valid and not s.exact
    metrics = task.aggregate([s])
    assert list(metrics) == [*task.metric_keys, "agree_text", "agree_emotion"]
    assert metrics["agree_emotion"] == pytest.approx(2 / 3)
    assert metrics["agree_text"] == 1.0
    assert metrics["field_agreement"] == pytest.approx(5 / 6)


def test_extra_item_lowers_agreement(task: JsonTask) -> None:
    extra = json.dumps([*REF_ITEMS, {"text": "whatever", "emotion": "neutral"}])
    s = task.score(extra, REF, {})
    assert s.valid and not s.exact
    assert s.details["field_total"] == {"text": 4, "emotion": 4}
    assert task.aggregate([s])["field_agreement"] == pytest.approx(6 / 8)


def test_aggregate_micro_averages_fields_by_hand(task: JsonTask) -> None:
    scores = [
        task.score(REF, REF, {}),  # 3/3 text, 3/3 emotion
        task.score(with_emotion(0, "happy"), REF, {}),  # schema error; 3/3 text, 2/3 emotion
        task.score("oops", REF, {}),  # 0/3, 0/3
    ]
    metrics = task.aggregate(scores)
    assert metrics == pytest.approx(
        {
            "valid": 1 / 3,
            "exact": 1 / 3,
            "parses": 2 / 3,
            "schema_valid": 1 / 3,
            "field_agreement": 11 / 18,
            "agree_text": 6 / 9,
            "agree_emotion": 5 / 9,
        }
    )


def test_object_reference_agrees_per_top_level_key() -> None:
    task = JsonTask()
    ref = '{"city": "Paris", "year": 2024, "tags": ["a"]}'
    s = task.score('{"year": 2024, "city": "paris", "tags": ["b"]}', ref, {})
    assert s.valid and not s.exact
    assert s.details["field_agree"] == {"city": 1, "year": 1, "tags": 0}
    assert task.aggregate([s])["field_agreement"] == pytest.approx(2 / 3)


def test_without_fields_agreement_is_the_exact_rate() -> None:
    task = JsonTask()
    scores = [task.score("[1, 2]", "[1, 2]", {}), task.score("[2, 1]", "[1, 2]", {})]
    metrics = task.aggregate(scores)
    assert list(metrics) == list(task.metric_keys)
    assert metrics["field_agreement"] == metrics["exact"] == 0.5


def test_without_schema_any_json_is_valid_and_true_is_not_one() -> None:
    task = JsonTask()
    s = task.score("true", "1", {})
    assert s.valid and s.details["schema_valid"] and not s.exact
    assert task.score("1.0", "1", {}).exact


def test_reference_not_json_is_reported() -> None:
    s = JsonTask(schema=SCHEMA).score(REF, "{broken", {})
    assert s.valid and not s.exact
    assert s.error is not None and s.error.startswith("reference is not JSON: ")


def test_hostile_nesting_never_raises(task: JsonTask) -> None:
    s = task.score("[" * 100_000 + "]" * 100_000, REF, {})
    assert not s.valid


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "arrayy"}, "at $.type"),
        ('{"type": "array", "minItems": -1}', "at $.minItems"),
        ("{not json", "schema is not JSON"),
        (42, "must be a JSON object"),
    ],
)
def test_bad_schema_is_a_config_error(schema: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_task("json", {"schema": schema})
    assert fragment in str(info.value)
