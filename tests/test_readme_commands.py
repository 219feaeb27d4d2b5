"""Every ``ftui ...`` command the README prints goes through the real argument parser.

Command lines in code blocks are parsed as written. Inline ones may be synopses
(``ftui eval RUN [--variant V]``, ``(FILE | --preset NAME)``): every form they stand for is
parsed, with each placeholder filled with a value of its kind. A command the parser refuses
fails the test with the README line.
"""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest

from ftui.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"

PLACEHOLDERS = {
    "RUN": "latest", "STUDY": "latest", "ID": "latest", "FILE": "data.jsonl", "NAME": "demo", "T": "sql",
    "N": "3", "V": "finetuned", "M": "smollm2-135m", "PATH": "out", "HELDOUT": "test.json",
    "PREDS": "preds.txt", "OUT.jsonl": "rows.jsonl", "KEY=VALUE": "lora_r=8", "NAME=COLUMN": "reference=mr",
    "TASKFIELD=COLUMN": "reference=mr", "FOLDER": "./spider-intersect", "FILE|FOLDER": "data.jsonl",
}


def readme_commands() -> list[tuple[int, str, bool]]:
    """(line number, command, is_synopsis) for every ftui command in the README."""
    found: list[tuple[int, str, bool]] = []
    in_block, pending, start = False, "", 0
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            text = line.strip()
            if pending:
                pending += " " + text.rstrip("\\").strip()
            elif text.startswith(("ftui ", "$ ftui ")) or text in ("ftui", "$ ftui"):
                pending, start = text.removeprefix("$ ").rstrip("\\").strip(), number
            if pending and not text.endswith("\\"):
                found.append((start, _strip_comment(pending), False))
                pending = ""
            continue
        for span in re.findall(r"`([^`]+)`", line):
            if span == "ftui" or span.startswith("ftui "):
                found.append((number, span.replace("\\|", "|"), True))
    return found


def _strip_comment(command: str) -> str:
    words = shlex.split(command, comments=True)
    return shlex.join(words)


def expand(synopsis: str) -> list[list[str]]:
    """Every argument list a synopsis stands for: ``[x]`` with and without, ``(a | b)`` each."""
    tokens = re.findall(r"\[|\]|\(|\)|\||[^\s\[\]()|]+", synopsis)
    pos = 0

    def alternatives() -> list[list[str]]:
        nonlocal pos
        options = [sequence()]
        while pos < len(tokens) and tokens[pos] == "|":
            pos += 1
            options.append(sequence())
        return [o for alt in options for o in alt]

    def sequence() -> list[list[str]]:
        nonlocal pos
        forms: list[list[str]] = [[]]
        while pos < len(tokens) and tokens[pos] not in ("]", ")", "|"):
            token = tokens[pos]
            pos += 1
            if token in ("[", "("):
                inner = alternatives()
                pos += 1  # the closing bracket
                choices = inner + [[]] if token == "[" else inner
            elif token == "...":
                continue
            else:
                choices = [[PLACEHOLDERS.get(token, token)]]
            forms = [f + c for f, c in itertools.product(forms, choices)]
        return forms

    return alternatives()


COMMANDS = readme_commands()


def test_the_readme_has_commands_to_check():
    assert len(COMMANDS) > 40
    assert any("--preset spider --data" in c for _, c, _ in COMMANDS)


@pytest.mark.parametrize("number,command,synopsis", COMMANDS, ids=[f"line{n}" for n, _, _ in COMMANDS])
def test_every_readme_command_is_accepted_by_the_parser(number, command, synopsis):
    forms = expand(command) if synopsis else [shlex.split(command)]
    parser = build_parser()
    for form in forms:
        assert form[0] == "ftui", (number, form)
        try:
            parser.parse_args(form[1:])
        except SystemExit as exc:
            pytest.fail(f"README line {number}: `{' '.join(form)}` is refused by the parser (exit {exc.code})")


def test_the_synopsis_expander_sees_every_form():
    forms = expand("ftui score (--task T | --preset NAME) (FILE | --data HELDOUT) [--json]")
    assert len(forms) == 8
    assert ["ftui", "score", "--preset", "demo", "--data", "test.json"] in forms
