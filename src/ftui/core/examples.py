"""One training/eval example, independent of where it was read from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Example:
    """A prompt's inputs and the reference answer."""

    fields: Mapping[str, str]
    """Task fields the prompt template uses (sql: ``question``, ``context``; others: ``text``
    or ``input``). For chat or prompt/completion sources, ``input`` is the last user turn."""
    reference: str
    """The answer the model should give (the last assistant turn for chat data)."""
    messages: tuple[Mapping[str, Any], ...] | None = None
    """Prompt turns from a chat or prompt/completion source, used instead of the template."""
    line: int = 0
    """1-based line (JSONL, CSV data row) or row number in the source, for messages."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Source columns kept for reference (e.g. tools for OpenAI chat data)."""
    file: str = ""
    """The file's name when the source is a folder of split files (reports say
    ``validation.jsonl line 107``); not written to a run's data files."""

    @property
    def where(self) -> str:
        """``line 107``, or ``validation.jsonl line 107`` for a folder's file."""
        return f"{self.file} line {self.line}" if self.file else f"line {self.line}"

    def to_json(self) -> dict[str, Any]:
        """The record written to ``data/{train,val,test}.jsonl`` of a run."""
        out: dict[str, Any] = {"fields": dict(self.fields), "reference": self.reference, "line": self.line}
        if self.messages is not None:
            out["messages"] = [dict(m) for m in self.messages]
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "Example":
        messages = obj.get("messages")
        return cls(
            fields=dict(obj["fields"]),
            reference=obj["reference"],
            messages=tuple(messages) if messages is not None else None,
            line=int(obj.get("line", 0)),
            extra=dict(obj.get("extra", {})),
        )

    def key(self) -> tuple[str, ...]:
        """What makes two examples the same input, for duplicate detection."""
        if self.messages is not None:
            return tuple(f"{m.get('role')}:{m.get('content')}" for m in self.messages)
        return tuple(f"{k}={v}" for k, v in sorted(self.fields.items()))
