"""Rich renderables for examples: chat turns, eval records, badges and diffs against the reference."""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from typing import Any, Mapping, Sequence

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.syntax import Syntax
from rich.text import Text

from ftui.core.tasks.base import is_scorable as scorable

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
ROLE_STYLE = {"system": "bold magenta", "user": "bold cyan", "assistant": "bold green"}


def lexer_for(task: str) -> str | None:
    """Highlight SQL and JSON answers; other tasks' text is shown plain."""
    return {"sql": "sql", "json": "json"}.get(task)


def code(text: str, lexer: str | None, *, dark: bool) -> Text:
    """Highlighted code as plain styled Text (cheap to lay out, unlike a Syntax renderable)."""
    if not lexer:
        return Text(text)
    if lexer == "json":
        try:  # pretty-print when it parses, so nested objects are readable
            text = json.dumps(json.loads(text), ensure_ascii=False, indent=1)
        except ValueError:
            pass
    return _highlighted(text, lexer, dark).copy()


@lru_cache(maxsize=512)
def _highlighted(text: str, lexer: str, dark: bool) -> Text:
    # Paging back and forth re-renders the same answers: highlight each once. word_wrap: a
    # highlighted Text is otherwise no_wrap, and a long reference was cut at the pane's edge (#18).
    syntax = Syntax(text, lexer, theme="ansi_dark" if dark else "ansi_light", background_color="default",
                    word_wrap=True)
    out = syntax.highlight(text)
    out.rstrip()
    return out


DIFF_MIN_SIMILARITY = 0.3
"""Below this share of common words a word diff is noise: say so instead."""


def word_diff(reference: str, output: str) -> Text:
    """The output against the reference, word by word: removed in red, added in green."""
    a, b = _TOKEN.findall(reference), _TOKEN.findall(output)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() < DIFF_MIN_SIMILARITY:
        return Text(f"little in common with the reference ({matcher.ratio():.0%} of words alike)", style="italic")
    out = Text()
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append("".join(a[i1:i2]))
            continue
        if op in ("delete", "replace"):
            out.append("[-" + "".join(a[i1:i2]) + "-]", style="bold red strike")
        if op in ("insert", "replace"):
            out.append("{+" + "".join(b[j1:j2]) + "+}", style="bold green underline")
    return out


def is_scorable(record: Mapping[str, Any]) -> bool:
    """False when the reference itself could not be judged (sql: it fails on its context)."""
    return scorable(record.get("details") or {})


def is_correct(record: Mapping[str, Any]) -> bool:
    """Execution match where the task has it (sql), else exact match."""
    ex = record.get("execution")
    return bool(ex) if ex is not None else bool(record.get("exact"))


def badges(record: Mapping[str, Any]) -> Text:
    out = Text()
    items = [("valid", record.get("valid")), ("exact", record.get("exact"))]
    if record.get("execution") is not None:
        items.append(("exec", record.get("execution")))
    for name, ok in items:
        out.append(f" {'✓' if ok else '✗'} {name} ", style="bold green" if ok else "bold red")
    if not is_scorable(record):
        out.append(" ⚠ reference cannot run on its context: not scored ", style="bold yellow")
    return out


def render_conversation(messages: Sequence[Mapping[str, Any]], task: str, *, dark: bool) -> Group:
    """Chat turns as training sees them: system, user, assistant (the reference)."""
    parts: list[RenderableType] = []
    for i, m in enumerate(messages):
        role = str(m.get("role", "?"))
        content = m.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        parts.append(Text(role, style=ROLE_STYLE.get(role, "bold")))
        last_answer = role == "assistant" and i == len(messages) - 1
        body = code(text, lexer_for(task), dark=dark) if last_answer else Text(text)
        parts.append(Padding(body, (0, 0, 1, 2)))
    return Group(*parts)


def rule(title: Text | str, width: int) -> Text:
    """A section line ``title ─────`` as Text (a Rich Rule would need a console pass)."""
    out = Text.assemble(title) if isinstance(title, str) else title.copy()
    out.append(" " + "─" * max(0, width - out.cell_len - 1), style="dim")
    return out


def _input_part(record: Mapping[str, Any], task: str, *, dark: bool) -> list[Text]:
    fields = record.get("fields") or {}
    if task == "sql" and fields.get("question"):
        parts = [Text.assemble(("Question: ", "bold"), fields["question"])]
        if fields.get("context"):
            parts.append(code(fields["context"], "sql", dark=dark))
        return parts
    return [Text(str(record.get("input", "")))]


def render_example(records: Mapping[str, Mapping[str, Any]], variants: Sequence[str], selected: str,
                   task: str, *, dark: bool, width: int = 78) -> Text:
    """One held-out example: input, reference, each variant's output with badges and a diff.

    The selected variant comes first, right under the reference: with three variants at 80x24
    the one being looked at (the fine-tuned model, unless ``v`` chose another) is above the fold.

    One Text, not a Group of renderables: Textual lays it out without a Rich console pass,
    which keeps paging through examples fast.
    """
    first = next((records[v] for v in variants if v in records), None)
    if first is None:
        return Text("no record for this example")
    lexer = lexer_for(task)
    parts: list[Text] = [rule(Text("input", style="dim"), width)]
    parts += _input_part(first, task, dark=dark)
    parts += [rule(Text("reference", style="dim"), width), code(first.get("reference", ""), lexer, dark=dark)]
    for v in ([selected] if selected in variants else []) + [v for v in variants if v != selected]:
        rec = records.get(v)
        title = Text.assemble((f"{v}", "bold reverse" if v == selected else "bold"), " ")
        if rec is None:
            parts += [rule(title, width), Text("(not evaluated on this example)", style="dim")]
            continue
        title.append_text(badges(rec))
        parts.append(rule(title, width))
        output = rec.get("output", "")
        parts.append(code(output, lexer, dark=dark) if output.strip() else Text("(empty output)", style="dim italic"))
        if output.strip() != str(rec.get("reference", "")).strip():
            parts.append(Text.assemble(("diff ", "dim"), word_diff(rec.get("reference", ""), output)))
        if rec.get("error"):
            parts.append(Text.assemble(("why: ", "dim"), (str(rec["error"]), "italic")))
    return Text("\n").join(parts)


class Flow:
    """Items on as few lines as fit, wrapping between items, never inside one."""

    def __init__(self, items: Sequence[Text], sep: str = " · ") -> None:
        self.items, self.sep = list(items), sep

    def __rich_console__(self, console, options):
        width = options.max_width
        line = Text()
        for item in self.items:
            if line.cell_len and line.cell_len + len(self.sep) + item.cell_len > width:
                yield line
                line = Text()
            if line.cell_len:
                line.append(self.sep)
            line.append_text(item)
        if line.cell_len:
            yield line
