"""The json task: structured outputs checked by a JSON Schema (DESIGN.md, Tasks).

Valid means: the cleaned output parses as JSON and satisfies the preset's schema (Draft
2020-12). Field agreement compares the prediction with the reference field by field where
the reference's shape allows it: an object (per top-level key) or a list of objects (items
aligned by position, per field, e.g. ``emotion`` in the json-emotions preset).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from ftui.core.errors import ConfigError
from ftui.core.tasks.base import Score, rate
from ftui.core.tasks.text import strip_fence

__all__ = ["JsonTask"]

_MAX_ERROR_CHARS = 200
"""Validator messages quote the offending instance, which can be the whole output."""


def _short(message: str) -> str:
    return message if len(message) <= _MAX_ERROR_CHARS else message[: _MAX_ERROR_CHARS - 1] + "…"


MAX_OUTPUT_CHARS = 200_000
"""Longer outputs are invalid without being parsed: no answer of this task is that long, and
checking a multi-megabyte document against the schema would take seconds per example."""


def _loads(text: str) -> tuple[Any, str | None]:
    """(value, None) or (None, reason) — never raises on hostile text."""
    if len(text) > MAX_OUTPUT_CHARS:
        return None, f"too long ({len(text):,} characters; limit {MAX_OUTPUT_CHARS:,})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        joiner = " " if exc.msg.endswith(" at") else " at "  # "Unterminated string starting at"
        return None, f"{exc.msg}{joiner}line {exc.lineno} column {exc.colno}"
    except (ValueError, RecursionError):  # nesting past the decoder's recursion limit
        return None, "nested too deeply"


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: key order ignored, ``true`` is not ``1``, ``1`` equals ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and a == b


def _values_agree(pred: Any, ref: Any) -> bool:
    """Field agreement: strings case-insensitive and whitespace-collapsed, else JSON equality."""
    if isinstance(pred, str) and isinstance(ref, str):
        return " ".join(pred.split()).casefold() == " ".join(ref.split()).casefold()
    return json_equal(pred, ref)


def _field_counts(pred: Any, ref: Any) -> tuple[dict[str, int], dict[str, int]] | None:
    """Per-field (agree, total) counts, or None where the reference's shape has no fields.

    The reference decides the shape, so a prediction of the wrong shape (or none at all)
    still counts: it agrees on nothing. Otherwise a model that outputs garbage would drop
    out of the denominator and look better.
    """
    if isinstance(ref, dict):
        agree = {
            key: int(isinstance(pred, dict) and key in pred and _values_agree(pred[key], value))
            for key, value in ref.items()
        }
        return agree, {key: 1 for key in ref}
    if isinstance(ref, list) and ref and all(isinstance(item, dict) for item in ref):
        fields = list(dict.fromkeys(key for item in ref for key in item))
        pred_items = pred if isinstance(pred, list) else []
        positions = max(len(pred_items), len(ref))  # missing and extra items both disagree
        agree = dict.fromkeys(fields, 0)
        for pred_item, ref_item in zip(pred_items, ref):
            if not isinstance(pred_item, dict):
                continue
            for key in fields:
                if key in ref_item:
                    same = key in pred_item and _values_agree(pred_item[key], ref_item[key])
                else:  # heterogeneous reference items: absent in both is agreement
                    same = key not in pred_item
                agree[key] += int(same)
        return agree, dict.fromkeys(fields, positions)
    return None


def _load_schema(schema: Mapping[str, Any] | str | bool | None) -> Any:
    if isinstance(schema, str):
        parsed, reason = _loads(schema)
        if reason is not None:
            raise ConfigError(f"task 'json': schema is not JSON: {reason}")
        schema = parsed
    if schema is not None and not isinstance(schema, (Mapping, bool)):
        raise ConfigError(
            f"task 'json': schema must be a JSON object (or its text), not {type(schema).__name__}"
        )
    if schema is not None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ConfigError(
                f"task 'json': invalid JSON Schema: {_short(exc.message)} at {exc.json_path}"
            ) from None
    return schema


class JsonTask:
    """JSON outputs: parse, schema validity, exact structural match, field agreement."""

    name = "json"
    metric_keys: tuple[str, ...] = ("valid", "exact", "parses", "schema_valid", "field_agreement")

    def __init__(self, *, schema: Mapping[str, Any] | str | None = None) -> None:
        self.schema = _load_schema(schema)
        """The JSON Schema outputs must satisfy (Draft 2020-12); None: any JSON is valid."""
        self._validator = Draft202012Validator(self.schema) if self.schema is not None else None

    def _schema_error(self, value: Any) -> str | None:
        if self._validator is None:
            return None
        try:
            error = best_match(self._validator.iter_errors(value))
        except RecursionError:
            return "schema: output nested too deeply to check"
        # Any other failure (e.g. an unresolvable $ref in the schema) must not escape:
        # scorers never raise on model output.
        except Exception as exc:  # noqa: BLE001
            return _short(f"schema could not be applied: {exc}")
        if error is None:
            return None
        return f"schema: {_short(error.message)} at {error.json_path}"

    def score(self, prediction: str, reference: str, inputs: Mapping[str, str]) -> Score:
        pred, reason = _loads(strip_fence(prediction))
        parses = reason is None
        error = None if parses else f"not JSON: {reason}"
        if parses:
            error = self._schema_error(pred)
        schema_valid = parses and error is None
        details: dict[str, Any] = {"parses": parses, "schema_valid": schema_valid}
        ref, ref_reason = _loads(reference.strip())
        if ref_reason is not None:
            details["reference_error"] = True
            return Score(
                valid=schema_valid,
                exact=False,
                details=details,
                error=f"reference is not JSON: {ref_reason}",
            )
        try:
            exact = parses and json_equal(pred, ref)
            counts = _field_counts(pred if parses else None, ref)
        except RecursionError:
            exact, counts = False, None
            error = error or "output nested too deeply to compare"
        if counts is not None:
            details["field_agree"], details["field_total"] = counts
        return Score(valid=schema_valid, exact=exact, details=details, error=error)

    def validity(self, prediction: str, inputs: Mapping[str, str]) -> str | None:
        pred, reason = _loads(strip_fence(prediction))
        return f"not JSON: {reason}" if reason is not None else self._schema_error(pred)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, float]:
        agree: dict[str, int] = {}
        total: dict[str, int] = {}
        for s in scores:
            field_agree = s.details.get("field_agree", {})
            for key, count in s.details.get("field_total", {}).items():
                total[key] = total.get(key, 0) + int(count)
                agree[key] = agree.get(key, 0) + int(field_agree.get(key, 0))
        result = {
            "valid": rate([s.valid for s in scores]),
            "exact": rate([s.exact for s in scores]),
            "parses": rate([s.details.get("parses") for s in scores]),
            "schema_valid": rate([s.details.get("schema_valid") for s in scores]),
        }
        grand_total = sum(total.values())
        if grand_total == 0:
            # No reference had fields to compare (scalars, lists of scalars): a rate over
            # nothing would read as 0% agreement, so report the exact rate instead and no
            # per-field keys.
            result["field_agreement"] = result["exact"]
            return result
        result["field_agreement"] = sum(agree.values()) / grand_total
        # Extra per-field rates come after metric_keys, in order of first appearance.
        for key, count in total.items():
            if count:
                result[f"agree_{key}"] = agree[key] / count
        return result
