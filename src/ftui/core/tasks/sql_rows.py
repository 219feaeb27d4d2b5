"""The rows that fill the SQL task's databases, seeded from the gold query.

The rows are pseudo-random but hold the gold query's literals in the columns they are
compared with, and their neighbours (below, equal, above), so the gold's WHERE clause
selects some rows but not all. ``seeds_from`` reads what the gold says about the columns
(literals per column, joins, numeric use); ``rows_for`` turns that into the rows of one
database. Key columns (``sql_keys``) hold distinct values within their table, and the
columns that refer to them take their values from the key. Columns the gold sorts on or
takes the MIN/MAX of have no ties, except in one database (``TIE_DATABASE``) where the two
highest and the two lowest values are equal, so ``ORDER BY x DESC LIMIT 1`` and
``WHERE x = (SELECT MAX(x) ...)`` differ there as they do on real data. The databases
themselves, and the limits on untrusted queries, are in ``sql_sandbox``.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlglot import exp

from ftui.core.tasks.sql_keys import Key, key_columns
from ftui.core.tasks.sql_sandbox import Column, Table


# ---------------------------------------------------------------------------------------
# Seeds: what the gold query says about the data: literals per column, joins, numeric use.

_INT = re.compile(r"[+-]?\d{1,15}")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d{1,3})?")
# By database index: how often a random row takes one of the gold's literals (the first
# databases match the gold's WHERE often, the last rarely and without a witness row), and
# how many distinct values a column draws from (few: duplicates for GROUP BY, DISTINCT and
# joins; then many).
_DENSITY = (0.5, 0.25, 0.1)
_POOL_SIZE = (3, 6, 12)
TIE_DATABASE = 1
"""The database (by index; the only one when there is one) whose sorted columns have ties."""


@dataclass(frozen=True)
class _Condition:
    op: str
    """"=", "!=", "<", "<=", ">", ">=", "like", "glob", "in" or "between"."""
    values: tuple[Any, ...]


@dataclass
class Seeds:
    """How the gold query uses the columns, for filling them."""

    parent: dict[Key, Key] = field(default_factory=dict)
    """Union-find: columns compared with each other (joins) or of the same name share
    values."""
    conditions: dict[Key, list[_Condition]] = field(default_factory=dict)
    numeric: set[Key] = field(default_factory=set)
    """Used in arithmetic or SUM/AVG: filled with numbers even when declared VARCHAR."""
    ordered: set[Key] = field(default_factory=set)
    """Sorted on or under MIN/MAX: without ties but in ``TIE_DATABASE``."""

    def find(self, key: Key) -> Key:
        while self.parent.get(key, key) != key:
            key = self.parent[key]
        return key

    def link(self, a: Key, b: Key) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


_FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "=", "!=": "!="}
_COMPARISONS = {
    exp.EQ: "=",
    exp.NEQ: "!=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}


def seeds_from(tree: exp.Expression | None, tables: Sequence[Table]) -> Seeds:
    """What the gold query (None: unknown) says about the columns of ``tables``."""
    seeds = Seeds()
    columns = {t.name.lower(): {c.name.lower() for c in t.columns} for t in tables}
    owners: dict[str, list[str]] = {}
    for table, names in columns.items():
        for name in names:
            owners.setdefault(name, []).append(table)
    for name, tabs in owners.items():
        for other in tabs[1:]:
            seeds.link((tabs[0], name), (other, name))
    if tree is None:
        return seeds
    aliases: dict[str, str] = {}
    for node in tree.find_all(exp.Table):
        if node.name.lower() in columns:
            aliases[node.name.lower()] = node.name.lower()
            if node.alias:
                aliases[node.alias.lower()] = node.name.lower()
    in_query = set(aliases.values())

    def resolve(node: exp.Expression) -> list[Key]:
        while isinstance(node, exp.Paren):
            node = node.this
        if not isinstance(node, exp.Column):
            return []
        name = node.name.lower()
        if node.table:
            table = aliases.get(node.table.lower())
            return [(table, name)] if table and name in columns[table] else []
        hits = [(t, name) for t in sorted(in_query) if name in columns[t]]
        if hits or node.this.args.get("quoted"):
            return hits  # SQLite reads an unresolved "x" as a string, never a far column
        return [(t, name) for t in owners.get(name, [])]

    def literal(node: exp.Expression) -> Any:
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Literal):
            return str(node.this) if node.is_string else _number(str(node.this))
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            number = _number(str(node.this.this))
            return -number if number is not None else None
        if isinstance(node, exp.Column) and not node.table and node.this.args.get("quoted"):
            return None if resolve(node) else node.name  # SQLite's double-quoted string
        return None

    def add(keys: list[Key], op: str, values: list[Any]) -> None:
        values = [v for v in values if v is not None]
        for key in keys:
            if values:
                seeds.conditions.setdefault(key, []).append(_Condition(op, tuple(values)))

    for node_type, op in _COMPARISONS.items():
        for node in tree.find_all(node_type):
            left, right = resolve(node.this), resolve(node.expression)
            if left and right:
                for a in left:
                    for b in right:
                        seeds.link(a, b)
            elif left:
                add(left, op, [literal(node.expression)])
            elif right:
                add(right, _FLIPPED[op], [literal(node.this)])
    for node in tree.find_all(exp.Like, exp.ILike, exp.Glob):
        op = "glob" if isinstance(node, exp.Glob) else "like"
        add(resolve(node.this), op, [literal(node.expression)])
    for node in tree.find_all(exp.In):
        add(resolve(node.this), "in", [literal(e) for e in node.expressions])
    for node in tree.find_all(exp.Between):
        low, high = literal(node.args.get("low")), literal(node.args.get("high"))
        if low is not None and high is not None:
            add(resolve(node.this), "between", [low, high])
    for node in tree.find_all(exp.Sum, exp.Avg, exp.Add, exp.Sub, exp.Mul, exp.Div):
        for column in node.find_all(exp.Column):
            seeds.numeric.update(resolve(column))
    for node in tree.find_all(exp.Ordered, exp.Max, exp.Min):
        for column in node.find_all(exp.Column):
            seeds.ordered.update(resolve(column))
    return seeds


def _number(text: str) -> int | float | None:
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) and abs(value) < 1e15 else None
    return None


# ---------------------------------------------------------------------------------------
# Rows: pools of values per column class, the gold's literals and their neighbours.


def _neighbours(condition: _Condition, *, textual: bool) -> list[Any]:
    """Values that satisfy the condition and values just beside it. ``textual``: the
    column has TEXT affinity, so SQLite compares even numbers as text ('9' > '10')."""
    out: list[Any] = []
    for value in condition.values:
        number = _number(value) if isinstance(value, str) else value
        if number is not None and condition.op not in ("like", "glob"):
            for step in (-1, 0, 1):
                near = number + step
                out.append(_format_like(value, near))
            if textual and condition.op not in ("=", "!=", "in"):
                text = _as_text(value)
                out += [text[:-1] or "", text + "0"]  # just below and above, as text
        elif condition.op in ("like", "glob"):
            many, one = ("%", "_") if condition.op == "like" else ("*", "?")
            pattern = str(value)
            for filler in ("", "Ab ", " zq"):  # empty, then text on each side of the core
                out.append(
                    "".join(filler if ch == many else "k" if ch == one else ch for ch in pattern)
                )
            out.append(pattern.replace(many, "").replace(one, ""))
        elif condition.op in ("=", "!=", "in"):
            out.append(value)  # other values come from the pool
        else:
            out += [value, value + "a", value[:-1]]
    if condition.op == "between":
        low, high = (_number(str(v)) for v in condition.values[:2])
        if low is not None and high is not None:
            out.append(_format_like(condition.values[0], (low + high) / 2))
    return out


def _format_like(original: Any, number: int | float) -> Any:
    """``number`` written the way the literal was: a string literal stays a string."""
    if isinstance(original, str):
        return str(number) if isinstance(number, int) else f"{number:g}"
    return number


def _holds(value: Any, condition: _Condition, *, textual: bool) -> bool:
    """Roughly what SQLite answers for ``column <op> literal`` with ``value`` stored."""
    op, values = condition.op, condition.values
    if textual:
        value, values = _as_text(value), tuple(_as_text(v) for v in values)
    if op == "like" or op == "glob":
        pattern = "".join(
            ".*" if ch in "%*" else "." if ch in "_?" else re.escape(ch) for ch in str(values[0])
        )
        flags = re.IGNORECASE | re.DOTALL if op == "like" else re.DOTALL
        return re.fullmatch(pattern, str(value), flags) is not None
    if op == "in":
        return any(_compare(value, v) == 0 for v in values)
    if op == "between":
        return _compare(value, values[0]) >= 0 and _compare(value, values[1]) <= 0
    c = _compare(value, values[0])
    return {"=": c == 0, "!=": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]


def _compare(a: Any, b: Any) -> int:
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    na, nb = _number(str(a)), _number(str(b))
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    return (str(a) > str(b)) - (str(a) < str(b))


def _as_text(value: Any) -> str:
    """A value as a TEXT-affinity column stores it (SQLite writes 5.0 as '5.0')."""
    return value if isinstance(value, str) else str(value)


@dataclass
class _ClassValues:
    pool: list[Any]
    """Distinct values; as many as a table has rows when the class holds a key."""
    shared: list[Any]
    """The values non-key columns draw from: few, so that they repeat."""
    candidates: list[Any]
    witness: Any


def _class_values(
    rep: Key,
    seeds: Seeds,
    members: list[Key],
    *,
    numeric: bool,
    textual: bool,
    size: int,
    n_keys: int,
    rng: random.Random,
) -> _ClassValues:
    conditions = [c for m in members for c in seeds.conditions.get(m, [])]
    picks = rng.sample(range(1, 100), max(size, min(n_keys, 99)))
    pool: list[Any] = picks if numeric else [f"{rep[1]} {k}" for k in picks]
    candidates: list[Any] = []
    for condition in conditions:
        candidates += _neighbours(condition, textual=textual)
    candidates = list(dict.fromkeys(candidates))  # unique, in order
    witness = None
    if candidates:
        met = {v: sum(_holds(v, c, textual=textual) for c in conditions) for v in candidates}
        best = max(met.values())
        witness = rng.choice([v for v in candidates if met[v] == best])
    return _ClassValues(pool, pool[:size], candidates, witness)


def rows_for(
    tables: Sequence[Table],
    seeds: Seeds,
    *,
    index: int,
    n_databases: int,
    n_rows: int,
    rng: random.Random,
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of every table in database number ``index``.

    Every database but the last starts each table with a witness row that meets all the
    gold's conditions at once, then rows that differ from it in one column, set to a
    literal's neighbour (``year = 1990`` beside ``year > 1990``): these tell ``>`` from
    ``>=`` and one literal from another. The rest, and all of the last database, are
    random, with the literals mixed in at the level's density. Key columns are then made
    distinct within their table.
    """
    level = min(index, len(_DENSITY) - 1) if n_databases > 1 else 0
    density, size = _DENSITY[level], _POOL_SIZE[level]
    witness_row = index < n_databases - 1 or n_databases == 1
    n_variations = (max(n_rows - 3, 1), n_rows // 2, 0)[level] if witness_row else 0
    members: dict[Key, list[Key]] = {}
    numeric: dict[Key, bool] = {}
    textual: dict[Key, bool] = {}
    for table in tables:
        for column in table.columns:
            key = (table.name.lower(), column.name.lower())
            rep = seeds.find(key)
            members.setdefault(rep, []).append(key)
            numeric[rep] = numeric.get(rep, False) or _is_numeric(column, key, seeds)
            textual[rep] = textual.get(rep, False) or column.affinity == "TEXT"
    keys = key_columns(tables, members, seeds.find)
    keyed = {seeds.find(k) for k in keys}
    classes = {
        rep: _class_values(
            rep,
            seeds,
            cls,
            numeric=numeric[rep],
            textual=textual[rep],
            size=size,
            n_keys=n_rows if rep in keyed else 0,
            rng=rng,
        )
        for rep, cls in sorted(members.items())
    }
    with_ties = index == min(TIE_DATABASE, n_databases - 1)
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        reps = [seeds.find((table.name.lower(), c.name.lower())) for c in table.columns]
        is_key = [(table.name.lower(), c.name.lower()) in keys for c in table.columns]
        tie_free = [any(m in seeds.ordered for m in members[rep]) for rep in reps]
        base: list[list[Any]] = []
        for rep, key, sorted_on in zip(reps, is_key, tie_free):
            if key:
                # The first row (the witness) holds the value the witness rows of the
                # referring tables hold, so that they join.
                pool = classes[rep].pool
                base.append([pool[0], *rng.sample(pool[1:], len(pool) - 1)][:n_rows])
            elif sorted_on:
                picks = rng.sample(range(1, max(1000, 10 * n_rows)), n_rows)
                values = picks if numeric[rep] else [f"{rep[1]} {k}" for k in picks]
                if with_ties:
                    _tie_the_ends(values, as_text=textual[rep])
                base.append(values)
            else:
                base.append([rng.choice(classes[rep].shared) for _ in range(n_rows)])
        # Round robin over the columns, so every constrained column gets its neighbours.
        per_column = [list(classes[rep].candidates) for rep in reps]
        for candidates in per_column:
            rng.shuffle(candidates)
        variations = [
            (i, candidates[k])
            for k in range(max(map(len, per_column), default=0))
            for i, candidates in enumerate(per_column)
            if k < len(candidates)
        ]
        plans: list[tuple[int, Any] | None] = [None] if witness_row else []
        plans += variations[:n_variations]
        table_rows = []
        for r in range(n_rows):
            plan = plans[r] if r < len(plans) else "random"
            row = []
            for i, rep in enumerate(reps):
                values = classes[rep]
                if plan == "random":
                    use_literal = values.candidates and rng.random() < density
                    row.append(rng.choice(values.candidates) if use_literal else base[i][r])
                elif plan is not None and plan[0] == i:
                    row.append(plan[1])
                elif values.candidates:
                    row.append(values.witness)
                elif is_key[i] or tie_free[i] or (plan is not None and rng.random() < 0.5):
                    row.append(base[i][r])
                else:
                    # The class's first pool value, the same in every table, so that
                    # the witness rows join up.
                    row.append(values.pool[0])
            table_rows.append(row)
        for i, rep in enumerate(reps):
            if is_key[i]:
                _make_distinct(table_rows, i, classes[rep].pool, numeric=numeric[rep], name=rep[1])
        rows[table.name] = [tuple(row) for row in table_rows]
    return rows


def _tie_the_ends(values: list[Any], *, as_text: bool) -> None:
    """The two highest values made equal, and the two lowest (needs four values), in the
    order SQLite sorts them: a TEXT column sorts numbers as text ('9' > '10')."""
    if len(values) < 4:
        return
    order = sorted(range(len(values)), key=lambda i: _as_text(values[i]) if as_text else values[i])
    values[order[-2]] = values[order[-1]]
    values[order[1]] = values[order[0]]


def _make_distinct(
    rows: list[list[Any]], column: int, pool: list[Any], *, numeric: bool, name: str
) -> None:
    """A repeated value in ``column`` replaced by an unused one: the pool's first (the
    values the referring columns hold), then fresh ones."""
    used: set[str] = set()  # as text: a TEXT column stores 5 and '5' alike
    fresh = iter(pool)
    counter = 100  # past the pools, which draw from 1..99
    for row in rows:
        value = row[column]
        while str(value) in used:
            value = next(fresh, None)
            if value is None:
                value, counter = (counter if numeric else f"{name} {counter}"), counter + 1
        used.add(str(value))
        row[column] = value


def _is_numeric(column: Column, key: Key, seeds: Seeds) -> bool:
    if column.numeric or key in seeds.numeric:
        return True
    return any(
        _number(str(v)) is not None
        for c in seeds.conditions.get(key, [])
        if c.op not in ("like", "glob")
        for v in c.values
    )
