"""The text task: any custom dataset, judged by exact and normalised match.

Also home of ``strip_fence``, the output cleanup every task shares (models like to wrap
answers in a markdown code fence).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Mapping, Sequence

from ftui.core.errors import ConfigError
from ftui.core.tasks.base import Score, rate

__all__ = ["TextTask", "normalize_text", "strip_fence"]

_FENCE_OPEN = re.compile(r"```[^\n`]*(?:\n|$)")


def strip_fence(text: str) -> str:
    """``text`` without surrounding whitespace and one surrounding markdown code fence.

    Handles ```` ``` ````, ```` ```json ```` and the like, and a fence the model opened but
    never closed (output cut at the token limit). A fence in the middle of prose is left
    alone: that answer is not just code.
    """
    cleaned = text.strip()
    if not cleaned.startswith("```"):
        return cleaned
    opening = _FENCE_OPEN.match(cleaned)
    if opening is None:  # "```x```" on one line: no info string, content up to the fence
        body = cleaned[3:]
    else:
        body = cleaned[opening.end() :]
    if body.rstrip().endswith("```"):
        body = body.rstrip()[:-3]
    return body.strip()


def _is_edge_junk(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")


def normalize_text(text: str) -> str:
    """Case-folded, whitespace collapsed, punctuation stripped from both ends."""
    collapsed = " ".join(text.casefold().split())
    start, end = 0, len(collapsed)
    while start < end and _is_edge_junk(collapsed[start]):
        start += 1
    while end > start and _is_edge_junk(collapsed[end - 1]):
        end -= 1
    return collapsed[start:end]


class TextTask:
    """Free text: exact match, normalised match, and validity by an optional regex."""

    name = "text"
    metric_keys: tuple[str, ...] = ("valid", "exact", "normalized")

    def __init__(self, *, valid_regex: str | None = None) -> None:
        if valid_regex is not None and not isinstance(valid_regex, str):
            raise ConfigError(
                f"task 'text': valid_regex must be a string, not {type(valid_regex).__name__}"
            )
        self.valid_regex = valid_regex
        """Pattern the whole cleaned output must match to count as valid (None: no validity rule,
        so no ``valid`` rate is reported: every answer would count as valid)."""
        if valid_regex is None:
            self.metric_keys = ("exact", "normalized")
        try:
            self._pattern = re.compile(valid_regex) if valid_regex is not None else None
        except re.error as exc:
            raise ConfigError(
                f"task 'text': valid_regex {valid_regex!r} is not a regex: {exc}"
            ) from None

    def score(self, prediction: str, reference: str, inputs: Mapping[str, str]) -> Score:
        cleaned = strip_fence(prediction)
        valid = self._pattern is None or self._pattern.fullmatch(cleaned) is not None
        return Score(
            valid=valid,
            exact=cleaned == reference.strip(),
            details={"normalized": normalize_text(cleaned) == normalize_text(reference)},
            error=None if valid else f"output does not match valid_regex {self.valid_regex!r}",
        )

    def validity(self, prediction: str, inputs: Mapping[str, str]) -> str | None:
        if self._pattern is None or self._pattern.fullmatch(strip_fence(prediction)) is not None:
            return None
        return f"output does not match valid_regex {self.valid_regex!r}"

    def aggregate(self, scores: Sequence[Score]) -> dict[str, float]:
        rates = {
            "valid": rate([s.valid for s in scores]),
            "exact": rate([s.exact for s in scores]),
            "normalized": rate([s.details.get("normalized") for s in scores]),
        }
        return {k: rates[k] for k in self.metric_keys}
