"""Synthetic text-to-SQL rows in the style of b-mc2/sql-create-context.

Each row is ``{"question", "context", "answer"}``: the context holds ``CREATE TABLE``
statements joined by ``"; "`` naming the columns the query uses (now and then one or two
more), as in the real dataset. Two families, as there:

* WikiSQL-style (this module): one table called ``table_name_<N>`` (or ``table_<id>_<n>``),
  a column lookup, a COUNT or a MIN/MAX/AVG/SUM under one to three conditions.
  ``table_name_<N>`` rows write string literals lower-cased, the others keep the case.
* Spider-style (``sql_spider.py``): real table names (``singer``, ``head``), ORDER BY ...
  LIMIT, GROUP BY with COUNT/HAVING, DISTINCT, BETWEEN, a subquery, two-table joins.

String literals are double-quoted, as the dataset writes them. ``generate`` runs every
answer on an in-memory SQLite database built from its context and raises
``SqlCheckError`` rather than return a row that fails, or one whose literal spells a column
of its context (SQLite would read ``"x"`` as that column).
"""

from __future__ import annotations

import random
import sqlite3
from typing import Callable

from ftui.presets.synth import sql_spider
from ftui.presets.synth.sql_pools import DOMAINS, Col, Domain
from ftui.presets.synth.sql_words import (
    LEAST, MOST, Query, Retry, a, cond, hases, label, plural, rels, where, whens,
    with_extras,
)

N = 3000
SEED = 20_240_607

KIND_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("lookup", 28), ("count", 11), ("aggregate", 17), ("order", 8), ("group", 8),
    ("select", 13), ("join", 17),
)


class SqlCheckError(AssertionError):
    """A generated answer does not run on its own context: a bug in the generator."""


def generate(n: int = N, *, seed: int = SEED) -> list[dict[str, str]]:
    """``n`` distinct rows (no two share a question), checked against SQLite."""
    return [row for _, row in generate_with_kinds(n, seed=seed)]


def generate_with_kinds(n: int = N, *, seed: int = SEED) -> list[tuple[str, dict[str, str]]]:
    """Like ``generate``, each row paired with its question kind (for summaries)."""
    rng = random.Random(seed)
    kinds = [k for k, _ in KIND_WEIGHTS]
    weights = [w for _, w in KIND_WEIGHTS]
    seen: set[str] = set()
    out: list[tuple[str, dict[str, str]]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n:
            raise SqlCheckError(f"only {len(out)} distinct rows after {attempts} draws")
        kind = rng.choices(kinds, weights)[0]
        try:
            query = _build(rng, kind)
        except Retry:
            continue
        if query.question.lower() in seen:
            continue
        seen.add(query.question.lower())
        row = {"question": query.question, "context": _context(query.used),
               "answer": query.answer}
        check_row(row, query.literals)
        out.append((kind, row))
    return out


def _build(rng: random.Random, kind: str) -> Query:
    if kind in ("lookup", "count", "aggregate"):
        return _wikisql(rng, kind)
    builder: Callable[[random.Random], Query] = getattr(sql_spider, kind)
    return builder(rng)


def _context(used: dict[str, list[Col]]) -> str:
    return "; ".join(
        f"CREATE TABLE {table} ({', '.join(f'{c.name} {c.sql_type}' for c in cols)})"
        for table, cols in used.items()
    )


def check_row(row: dict[str, str], literals: list[str] | None = None) -> None:
    """Raise ``SqlCheckError`` unless ``answer`` runs on a database made from ``context``."""
    columns = {
        part.split()[0].lower()
        for stmt in row["context"].split("; ")
        for part in stmt[stmt.index("(") + 1 : -1].split(", ")
    }
    for lit in literals or ():
        if lit.startswith('"') and lit.strip('"').lower() in columns:
            raise SqlCheckError(f"literal {lit} names a column: {row}")
    db = sqlite3.connect(":memory:")
    try:
        for stmt in row["context"].split("; "):
            db.execute(stmt)
        db.execute(row["answer"]).fetchall()
    except sqlite3.Error as exc:
        raise SqlCheckError(f"{exc}: {row}") from None
    finally:
        db.close()


# --- WikiSQL-style ----------------------------------------------------------------------


def _wikisql_table(rng: random.Random) -> tuple[str, bool]:
    """A table name and whether its string literals are lower-cased (as WikiSQL's are)."""
    if rng.random() < 0.8:
        return f"table_name_{rng.randint(1, 99)}", True
    return f"table_{rng.randint(1_000_000, 2_999_999)}_{rng.randint(1, 40)}", False


def _wikisql(rng: random.Random, kind: str) -> Query:
    dom: Domain = rng.choice(DOMAINS)
    table, lower = _wikisql_table(rng)
    if kind == "aggregate":
        numeric = [c for c in dom.cols if c.numeric]
        if not numeric:
            raise Retry
        sel = rng.choice(numeric)
    else:
        sel = rng.choice(dom.cols)
    others = [c for c in dom.cols if c is not sel]
    k = min(len(others), rng.choices((1, 2, 3), weights=(55, 35, 10))[0])
    conds = [cond(rng, c, lower=lower) for c in rng.sample(others, k)]
    past = rng.random() < (0.75 if dom.past else 0.25)
    be, had, does = ("was", "had", "did") if past else ("is", "has", "does")
    e, es, s, sp = dom.entity, dom.entities, label(sel), plural(sel)

    def rel() -> str:
        return rels(rng, conds, be)

    def hs() -> str:
        return hases(rng, conds)

    def when() -> str:
        return whens(rng, conds, be)

    if kind == "lookup":
        options = [f"Which {s} {had} {hs()}?", f"Name the {s} for {hs()}",
                   f"What {be} the {s} when {when()}?", f"What {s} {be} listed for {hs()}?",
                   f"Name the {s} when {when()}."]
        if s != e:  # not "the city of the city"
            options += [f"What {be} the {s} of the {e} {rel()}?",
                        f"Tell me the {s} for the {e} {rel()}.",
                        f"What {s} {does} the {e} {rel()} have?",
                        f"Give me the {s} of the {e} {rel()}."]
        if sel.key:
            options += [f"Which {e} {had} {hs()}?", f"Name the {e} {rel()}."]
            if dom.who:
                options.append(f"Who {be} the {e} {rel()}?")
        answer = f"SELECT {sel.name} FROM {table} WHERE {where(conds)}"
    elif kind == "count":
        have = "had" if past else "have"
        options = [
            f"How many {sp} {have} {hs()}?", f"What {be} the total number of {sp} {rel()}?",
            f"How many {es} {rel()} are there?", f"What is the number of {sp} when {when()}?",
            f"Count the number of {sp} with {hs()}.", f"How many {sp} are listed for {hs()}?",
        ]
        answer = f"SELECT COUNT({sel.name}) FROM {table} WHERE {where(conds)}"
    else:
        func, options = _aggregate_questions(rng, sel, e, es, be, rel, hs, when)
        answer = f"SELECT {func}({sel.name}) FROM {table} WHERE {where(conds)}"
    used = [sel] + [c.col for c in conds]
    return Query(rng.choice(options), answer, {table: with_extras(rng, used, dom.cols)},
                 [c.lit for c in conds])


def _aggregate_questions(rng: random.Random, sel: Col, e: str, es: str, be: str,
                         rel: Callable[[], str], hs: Callable[[], str],
                         when: Callable[[], str]) -> tuple[str, list[str]]:
    func = rng.choices(("MAX", "MIN", "AVG", "SUM"), weights=(3, 3, 2, 0 if sel.temporal else 2))[0]
    s, sp = label(sel), plural(sel)
    if func == "SUM" and (not sel.countable or s == "total"):
        return func, [f"What is the sum of the {sp} {rel()}?",
                      f"What is the sum of {s} when {when()}?", f"Name the sum of {s} for {hs()}"]
    if func == "MAX":
        adj = rng.choice(sel.most or MOST + (("most",) if sel.countable else ()))
    elif func == "MIN":
        adj = rng.choice(sel.least or LEAST + (("fewest",) if sel.countable else ()))
    else:
        adj = rng.choice(("average", "mean") if func == "AVG" else ("total", "combined"))
    return func, [
        f"What {be} the {adj} {s} for {a(e)} {rel()}?", f"What {be} the {adj} {s} when {when()}?",
        f"Name the {adj} {s} with {hs()}", f"Tell me the {adj} {s} for {hs()}.",
        f"What is the {adj} {s} among {es} {rel()}?",
    ]
