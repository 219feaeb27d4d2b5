"""The funcrep task: ViGGO-style meaning representations (DESIGN.md, Tasks).

An MR looks like ``verify_attribute(name[Little Big Adventure], rating[average])``.
Square brackets delimit values, so values may hold parentheses, colons, apostrophes and
digits (``name[Tom Clancy's The Division (2016)]``), or nothing (``player_perspective[]``,
as in ViGGO's ``request_attribute``).

Only list-valued attributes hold a comma-separated list of items, compared as a set
(``genres[action-adventure, role-playing]``); in ViGGO these are ``genres``, ``platforms``
and ``player_perspective``. Every other value is one string, commas included
(``developer[Spectrum HoloByte, Inc.]``, ``exp_release_date[June 29, 2018]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from ftui.core.errors import ConfigError
from ftui.core.tasks import viggo
from ftui.core.tasks.base import Score, rate
from ftui.core.tasks.text import strip_fence

__all__ = ["FuncrepTask", "MRParseError", "MeaningRepresentation", "parse_mr"]


class MRParseError(ValueError):
    """Malformed meaning representation; ``position`` is the 0-based offset of the fault."""

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(f"{message} at column {position + 1}")


@dataclass(frozen=True)
class MeaningRepresentation:
    """One parsed MR: a dialogue-act function and its attributes."""

    function: str
    attributes: Mapping[str, tuple[str, ...]]
    """Attribute -> values (stripped): a list attribute's items in written order, one value
    for any other attribute; empty tuple for ``attr[]``."""

    def slots(self) -> frozenset[tuple[str, str]]:
        """(attribute, normalised value) pairs, one per list item and one per other attribute;
        ``attr[]`` is the one slot (attribute, "")."""
        pairs: set[tuple[str, str]] = set()
        for attribute, values in self.attributes.items():
            if not values:
                pairs.add((attribute, ""))
            pairs.update((attribute, normalize_value(v)) for v in values)
        return frozenset(pairs)

    def value_sets(self) -> dict[str, frozenset[str]]:
        """Attribute -> set of normalised values: what exact match compares."""
        return {a: frozenset(normalize_value(v) for v in vs) for a, vs in self.attributes.items()}


_COMMA_SPACING = re.compile(r"\s*,\s*")


def normalize_value(value: str) -> str:
    """Case-insensitive, whitespace-collapsed form of one value; ``a ,b`` reads as ``a, b``."""
    return _COMMA_SPACING.sub(", ", " ".join(value.split())).casefold()


def _is_ident_start(char: str) -> bool:
    return char.isascii() and (char.isalpha() or char == "_")


def _is_ident_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


class _Parser:
    """A hand-written scanner for ``function(attr[value, ...], ...)``; one linear pass."""

    def __init__(self, text: str, list_attributes: frozenset[str]) -> None:
        self.text = text
        self.list_attributes = list_attributes
        self.pos = 0

    def _skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _ident(self, what: str) -> str:
        start = self.pos
        if not _is_ident_start(self._peek()):
            found = f"'{self._peek()}'" if self._peek() else "end of text"
            raise MRParseError(f"expected {what}, found {found}", start)
        while self.pos < len(self.text) and _is_ident_char(self.text[self.pos]):
            self.pos += 1
        return self.text[start : self.pos]

    def parse(self) -> MeaningRepresentation:
        self._skip_ws()
        if self.pos == len(self.text):
            raise MRParseError("empty output, expected a meaning representation", self.pos)
        function = self._ident("a function name")
        self._skip_ws()
        if self._peek() != "(":
            raise MRParseError(f"expected '(' after function name '{function}'", self.pos)
        self.pos += 1
        attributes: dict[str, tuple[str, ...]] = {}
        self._skip_ws()
        if self._peek() == ")":
            self.pos += 1
        else:
            while True:
                self._skip_ws()
                start = self.pos
                attribute = self._ident("an attribute name")
                if attribute in attributes:
                    raise MRParseError(f"duplicate attribute '{attribute}'", start)
                self._skip_ws()
                if self._peek() != "[":
                    raise MRParseError(f"expected '[' after attribute '{attribute}'", self.pos)
                body = self._bracket_body(attribute)
                if attribute in self.list_attributes:
                    attributes[attribute] = _split_values(body)
                else:
                    attributes[attribute] = (body.strip(),) if body.strip() else ()
                self._skip_ws()
                char = self._peek()
                if char == ",":
                    self.pos += 1
                    continue
                if char == ")":
                    self.pos += 1
                    break
                if not char:
                    raise MRParseError("missing ')'", self.pos)
                raise MRParseError(f"expected ',' or ')', found '{char}'", self.pos)
        self._skip_ws()
        if self.pos < len(self.text):
            raise MRParseError("unexpected text after the closing ')'", self.pos)
        return MeaningRepresentation(function=function, attributes=attributes)

    def _bracket_body(self, attribute: str) -> str:
        """Text between the '[' at ``pos`` and its matching ']' (nested brackets count)."""
        opening = self.pos
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
                if depth == 0:
                    return self.text[opening + 1 : self.pos - 1]
        raise MRParseError(f"unclosed '[' of attribute '{attribute}'", opening)


def _split_values(body: str) -> tuple[str, ...]:
    """Split a list attribute's bracket on top-level commas into stripped, non-empty items.

    Commas inside parentheses or nested brackets do not split, nor does a comma between two
    digits (a thousands separator, ``Warhammer 40,000``): ViGGO lists use ", ".
    """
    items: list[str] = []
    depth = 0
    start = 0
    for i, char in enumerate(body):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            after = body[i + 1 : i + 2]
            if not (i > 0 and body[i - 1].isdigit() and after.isdigit()):
                items.append(body[start:i])
                start = i + 1
    items.append(body[start:])
    return tuple(item.strip() for item in items if item.strip())


def parse_mr(text: str, list_attributes: Sequence[str] = viggo.LIST_ATTRIBUTES) -> MeaningRepresentation:
    """Parse one MR; raise ``MRParseError`` (a ``ValueError``) with a column on bad input.

    Brackets of ``list_attributes`` are split into items; any other bracket is one value.
    """
    return _Parser(text, frozenset(list_attributes)).parse()


def _names(option: str, value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"task 'funcrep': {option} must be a list of names, not {value!r}")
    if not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"task 'funcrep': {option} must be a non-empty list of names")
    return frozenset(value)


def _list_names(value: object, attributes: frozenset[str]) -> frozenset[str]:
    """``list_attributes``: may be empty (no attribute holds a list), each one an allowed attribute."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"task 'funcrep': list_attributes must be a list of attribute names, not {value!r}")
    unknown = sorted(set(value) - attributes)
    if unknown:
        raise ConfigError(f"task 'funcrep': list_attributes names {', '.join(repr(u) for u in unknown)}, "
                          "which attributes does not list")
    return frozenset(value)


class FuncrepTask:
    """Meaning representations: validity against allowed lists, exact match, slot F1."""

    name = "funcrep"
    metric_keys: tuple[str, ...] = (
        "valid",
        "exact",
        "exact_strict",
        "function_accuracy",
        "slot_precision",
        "slot_recall",
        "slot_f1",
    )

    def __init__(
        self,
        *,
        functions: Sequence[str] = viggo.FUNCTIONS,
        attributes: Sequence[str] = viggo.ATTRIBUTES,
        list_attributes: Sequence[str] | None = None,
    ) -> None:
        self.functions = _names("functions", functions)
        """Dialogue-act functions a valid output may use."""
        self.attributes = _names("attributes", attributes)
        """Attribute names a valid output may use."""
        if list_attributes is None:  # ViGGO's, as far as the allowed attributes have them
            list_attributes = [a for a in viggo.LIST_ATTRIBUTES if a in self.attributes]
        self.list_attributes = _list_names(list_attributes, self.attributes)
        """Attributes whose value is a comma-separated list, compared as a set of items;
        every other attribute's value is one string, commas included."""

    def _validity_error(self, mr: MeaningRepresentation) -> str | None:
        if mr.function not in self.functions:
            return f"unknown function '{mr.function}'"
        for attribute in mr.attributes:
            if attribute not in self.attributes:
                return f"attribute '{attribute}' is not allowed"
        return None

    def score(self, prediction: str, reference: str, inputs: Mapping[str, str]) -> Score:
        pred: MeaningRepresentation | None = None
        error: str | None = None
        # Strict: the text itself, whitespace normalised. The gold lists slots in a fixed order,
        # so a model that learnt the content but not the order scores exact and not strict.
        strict = " ".join(strip_fence(prediction).split()) == " ".join(reference.split())
        try:
            pred = parse_mr(strip_fence(prediction), self.list_attributes)
        except MRParseError as exc:
            error = f"does not parse: {exc}"
        if pred is not None:
            error = self._validity_error(pred)
        valid = pred is not None and error is None
        try:
            ref = parse_mr(reference.strip(), self.list_attributes)
        except MRParseError as exc:
            # A broken dataset row: nothing to compare with, so no slot counts either way.
            return Score(
                valid=valid,
                exact=False,
                details={"function_correct": False, "tp": 0, "fp": 0, "fn": 0, "exact_strict": strict},
                error=f"reference does not parse: {exc}",
            )
        ref_slots = ref.slots()
        if pred is None:
            # Unparsable output: every reference slot is missed.
            details = {"function_correct": False, "tp": 0, "fp": 0, "fn": len(ref_slots), "exact_strict": False}
            return Score(valid=False, exact=False, details=details, error=error)
        # Slots count even when the output is invalid (an unknown attribute is a false positive).
        pred_slots = pred.slots()
        function_correct = pred.function == ref.function
        details = {
            "function_correct": function_correct,
            "tp": len(pred_slots & ref_slots),
            "fp": len(pred_slots - ref_slots),
            "fn": len(ref_slots - pred_slots),
        }
        exact = function_correct and pred.value_sets() == ref.value_sets()
        details["exact_strict"] = strict and exact
        return Score(valid=valid, exact=exact, details=details, error=error)

    def validity(self, prediction: str, inputs: Mapping[str, str]) -> str | None:
        try:
            return self._validity_error(parse_mr(strip_fence(prediction), self.list_attributes))
        except MRParseError as exc:
            return f"does not parse: {exc}"

    def aggregate(self, scores: Sequence[Score]) -> dict[str, float]:
        # Micro-averaged: slot counts are summed over all scores before dividing.
        tp = sum(int(s.details.get("tp", 0)) for s in scores)
        fp = sum(int(s.details.get("fp", 0)) for s in scores)
        fn = sum(int(s.details.get("fn", 0)) for s in scores)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "valid": rate([s.valid for s in scores]),
            "exact": rate([s.exact for s in scores]),
            "exact_strict": rate([s.details.get("exact_strict") for s in scores]),
            "function_accuracy": rate([s.details.get("function_correct") for s in scores]),
            "slot_precision": precision,
            "slot_recall": recall,
            "slot_f1": f1,
        }
