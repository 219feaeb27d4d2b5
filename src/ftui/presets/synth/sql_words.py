"""Shared pieces of the SQL question builders: sampled values, conditions and phrases."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

from ftui.presets.synth.sql_pools import MONTHS, POOLS, Col

GT = ("greater than", "larger than", "more than", "higher than", "over", "above")
LT = ("less than", "smaller than", "lower than", "under", "below")
MOST = ("highest", "largest", "maximum")
LEAST = ("lowest", "smallest", "minimum")


class Retry(Exception):
    """The drawn schema cannot express the drawn question kind; draw again."""


@dataclass(frozen=True)
class Cond:
    col: Col
    op: str
    said: str
    """The value as the question says it ("Duke", "62,000")."""
    lit: str
    """The value as the query writes it (``"duke"``, ``62000``)."""


@dataclass
class Query:
    """What one template produced: the question, the answer and the columns it touched."""

    question: str
    answer: str
    used: dict[str, list[Col]]
    """Table name -> columns for its CREATE TABLE, in order."""
    literals: list[str] = field(default_factory=list)


def a(word: str) -> str:
    """``word`` with its indefinite article."""
    lowered = word.lower()
    vowel = lowered[:1] in "aeiou" and not lowered.startswith(("uni", "use", "u.s."))
    return ("an " if vowel else "a ") + word


def label(col: Col) -> str:
    return col.label or col.name.replace("_", " ")


def plural(col: Col) -> str:
    if col.plural:
        return col.plural
    word = label(col)
    if word.endswith("s") and not word.endswith("ss"):  # plural already: laps, goals
        return word
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + ("es" if word.endswith(("ss", "x", "ch", "sh")) else "s")


def is_plural(col: Col) -> bool:
    """Whether the label is itself plural ("points", "wins"): its plural is the same."""
    return plural(col) == label(col)


def a_label(col: Col) -> str:
    """"a pick", "an attendance", but "points" (a plural label takes no article)."""
    return label(col) if is_plural(col) else a(label(col))


def agree(be: str, col: Col) -> str:
    """"is"/"was" for a singular label, "are"/"were" for a plural one."""
    if is_plural(col):
        return {"is": "are", "was": "were"}.get(be, be)
    return be


# --- values --------------------------------------------------------------------------


def text_value(rng: random.Random, col: Col) -> str:
    pool = col.values
    if not isinstance(pool, str):
        return rng.choice(pool)
    month, day = rng.choice(MONTHS), rng.randint(1, 28)
    if pool == "@person":
        return f"{rng.choice(POOLS['@first'])} {rng.choice(POOLS['@last'])}"
    if pool == "@mdy":
        return f"{month} {day}, {rng.randint(1970, 2012)}"
    if pool == "@dmy":
        return f"{day} {month} {rng.randint(1950, 1985)}"
    if pool == "@md":
        return f"{month} {day}"
    if pool == "@dm":
        return f"{day} {month}"
    return rng.choice(POOLS[pool])


def num_value(rng: random.Random, col: Col, *, threshold: bool) -> int:
    assert col.span is not None
    lo, hi, step = col.span
    steps = (hi - lo) // step
    # a threshold strictly inside the range, so "< t" and "> t" can both select something
    value = lo + step * (rng.randint(1, max(1, steps - 1)) if threshold else rng.randint(0, steps))
    if threshold and value >= 1000:  # thresholds are round numbers: "more than 62000"
        unit = 10 ** (len(str(value)) - 2)
        value = max(lo, value // unit * unit)
    return value


def said_number(rng: random.Random, value: int) -> str:
    if value >= 10_000 and rng.random() < 0.3:
        return f"{value:,}"
    return str(value)


def cond(rng: random.Random, col: Col, *, lower: bool = False, ops: str = "=><") -> Cond:
    """A condition on ``col``; text values lower-cased in the query when ``lower``."""
    if not col.numeric:
        said = text_value(rng, col)
        return Cond(col, "=", said, '"' + (said.lower() if lower else said) + '"')
    op = rng.choice([o for o in ops for _ in range(3 if o == "=" else 2)])
    value = num_value(rng, col, threshold=op != "=")
    return Cond(col, op, said_number(rng, value), str(value))


def where(conds: Sequence[Cond], prefix: str = "", joiner: str = "AND") -> str:
    return f" {joiner} ".join(f"{prefix}{c.col.name} {c.op} {c.lit}" for c in conds)


# --- phrases ---------------------------------------------------------------------------


def cmp_word(rng: random.Random, c: Cond) -> str:
    words = (c.col.gt or GT) if c.op == ">" else (c.col.lt or LT)
    return rng.choice(words)


def rel(rng: random.Random, c: Cond, be: str = "is") -> str:
    """Describes an entity by a condition: "from Duke", "with a pick greater than 20"."""
    name, v, be = label(c.col), c.said, agree(be, c.col)
    if c.op == "=":
        options = [r.format(v=v) for r in c.col.rel] * 2 + [f"whose {name} {be} {v}"]
        if c.col.key:
            options += [f"named {v}", f"called {v}"]
        elif c.col.countable:
            options.append(f"with {v} {plural(c.col)}")
        else:
            options.append(f"with {a_label(c.col)} of {v}")
        return rng.choice(options)
    word = cmp_word(rng, c)
    options = [f"with {a_label(c.col)} {word} {v}", f"whose {name} {be} {word} {v}"]
    if c.col.countable:
        options.append(f"with {'more' if c.op == '>' else 'fewer'} than {v} {plural(c.col)}")
    return rng.choice(options)


def has(rng: random.Random, c: Cond) -> str:
    """The object of "has": "a pick of 23", "a crowd larger than 20000"."""
    name = label(c.col)
    if c.op == "=":
        if c.col.countable and rng.random() < 0.5:
            return f"{c.said} {plural(c.col)}"
        return rng.choice([f"{a_label(c.col)} of {c.said}"] * 3 + [f"{name} {c.said}"])
    if c.col.countable and rng.random() < 0.4:
        return f"{'more' if c.op == '>' else 'fewer'} than {c.said} {plural(c.col)}"
    return f"{a_label(c.col)} {cmp_word(rng, c)} {c.said}"


def when(rng: random.Random, c: Cond, be: str = "is") -> str:
    """A clause: "the college was Duke", "the crowd is larger than 20000"."""
    word = "" if c.op == "=" else cmp_word(rng, c) + " "
    return f"the {label(c.col)} {agree(be, c.col)} {word}{c.said}"


def rels(rng: random.Random, conds: Sequence[Cond], be: str = "is") -> str:
    return " and ".join(rel(rng, c, be) for c in conds)


def hases(rng: random.Random, conds: Sequence[Cond]) -> str:
    return " and ".join(has(rng, c) for c in conds)


def whens(rng: random.Random, conds: Sequence[Cond], be: str = "is") -> str:
    return " and ".join(when(rng, c, be) for c in conds)


def with_extras(rng: random.Random, used: Sequence[Col], pool: Sequence[Col],
                chance: float = 0.3) -> list[Col]:
    """The used columns, deduplicated, plus now and then a column the query does not need."""
    out = list({c.name: c for c in used}.values())
    spare = [c for c in pool if all(c.name != u.name for u in out)]
    if spare and rng.random() < chance:
        out += rng.sample(spare, min(len(spare), rng.randint(1, 2)))
    return out
