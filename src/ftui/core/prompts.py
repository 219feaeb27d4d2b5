"""Turning an Example into chat messages: the preset's template, or the source's own turns."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ftui.core.config import PromptTemplate
from ftui.core.errors import ConfigError
from ftui.core.examples import Example

Message = dict[str, Any]

# Templates for files given with --task and no preset. Presets carry their own.
DEFAULT_TEMPLATES: dict[str, PromptTemplate] = {
    "sql": PromptTemplate(
        system="You translate questions into SQLite queries. Answer with a single SQL query and nothing else.",
        user="Tables:\n{context}\n\nQuestion: {question}",
    ),
    "funcrep": PromptTemplate(
        system="Convert the sentence into a meaning representation: function(attribute[value], ...). "
        "Answer with the meaning representation only.",
        user="{text}",
    ),
    "json": PromptTemplate(system="Answer with JSON only.", user="{text}"),
    "text": PromptTemplate(system="", user="{input}"),
}


def render_user(example: Example, template: PromptTemplate) -> str:
    """The user turn for ``example`` (its own last user turn for chat sources)."""
    if example.messages is not None:
        return example.fields.get("input", "")
    try:
        return template.user.format_map(_Fields(example.fields))
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"prompt.user: bad template: {exc}") from None


def render_messages(example: Example, template: PromptTemplate, *,
                    shots: Sequence[Example] = ()) -> list[Message]:
    """The prompt turns (no answer): system, then k (user, assistant) shots, then the user turn.

    Chat sources keep their own turns; shots go in after their leading system turns.
    """
    shot_turns: list[Message] = []
    for shot in shots:
        shot_turns.append({"role": "user", "content": render_user(shot, template)})
        shot_turns.append({"role": "assistant", "content": shot.reference})
    if example.messages is not None:
        turns = [dict(m) for m in example.messages]
        lead = 0
        while lead < len(turns) and turns[lead].get("role") in ("system", "developer"):
            lead += 1
        return turns[:lead] + shot_turns + turns[lead:]
    head = [{"role": "system", "content": template.system}] if template.system else []
    return head + shot_turns + [{"role": "user", "content": render_user(example, template)}]


def conversation(example: Example, template: PromptTemplate) -> list[Message]:
    """Prompt turns plus the reference as the assistant's answer (what training sees)."""
    return render_messages(example, template) + [{"role": "assistant", "content": example.reference}]


class _Fields(dict):
    """format_map mapping that names a missing field instead of a bare KeyError."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__(fields)

    def __missing__(self, key: str) -> str:
        raise ConfigError(
            f"prompt.user uses {{{key}}} but the example has only: {', '.join(sorted(self)) or 'no fields'}"
        )
