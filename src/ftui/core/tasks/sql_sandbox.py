"""The databases that judge SQL: built from a context, seeded from the gold, run untrusted.

Everything a scored file holds is hostile: the schema (``context``), the gold query and the
model output. A database is built in three steps: the context's CREATE TABLE statements run
one at a time under an authorizer that allows only table creation; our own code reads the
schema back and inserts rows; then the connection is sealed (``PRAGMA query_only`` plus an
authorizer that allows only reads), and from then on queries run with a time limit, a row
cap and a size cap. Databases live in memory only and extension loading is never enabled.

The rows (second half of this module) are pseudo-random but hold the gold query's literals
in the columns they are compared with, and their neighbours (below, equal, above), so the
gold's WHERE clause selects some rows but not all. This module is over the usual size
because the task was given two files; the row generator is the part to move out first.
"""

from __future__ import annotations

import math
import random
import re
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

# SQLite reads a double-quoted token that names no column as a string literal (the "DQS"
# misfeature); the datasets rely on it. It is on by default, and on in the SQLite 3.40 this
# project is tested with (tests/test_task_sql.py checks it); a build compiled with
# SQLITE_DQS=0 would turn every such gold query into a "no such column" error.

MAX_CONTEXT_CHARS = 100_000
"""A longer context is cut here (real schemas are a few hundred characters)."""
MAX_TABLES = 64
MAX_VALUE_BYTES = 100_000
"""SQLITE_LIMIT_LENGTH: the largest string or blob a query may build (bounds memory and
the cost of one LIKE, which the progress handler cannot interrupt)."""
MAX_RESULT_BYTES = 16_000_000
"""Total text and blob bytes one query may return."""
PROGRESS_STEPS = 1000
"""The progress handler (our deadline check) runs every this many VM instructions."""

# Functions that read or write files or change the engine; most exist only in the sqlite3
# shell, but a build could register them, so they are refused by name. printf/format are
# refused because `printf('%.*c', 2000000000, 'x')` loops for seconds inside one VM
# instruction, where the progress handler (our time limit) never runs (SQLite 3.40).
_DENIED_FUNCTIONS = frozenset(
    "printf format load_extension readfile writefile edit fts3_tokenizer fsdir lsmode "
    "zipfile sqlar_compress sqlar_uncompress shell_add_schema shell_module_schema "
    "shell_putsnl shell_escape_crnl shell_idquote".split()
)
_SQLITE_RECURSIVE = getattr(sqlite3, "SQLITE_RECURSIVE", 33)  # named only in Python 3.11+
_READ_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, _SQLITE_RECURSIVE})
_CATALOGUE = frozenset({"sqlite_master", "sqlite_schema"})


class QueryError(Exception):
    """A query could not be run to the end; the message is for the user."""


@dataclass(frozen=True)
class Column:
    """One column of a table as SQLite declared it."""

    name: str
    declared_type: str
    """The type as written in the CREATE TABLE ("VARCHAR", "INTEGER", "" when none)."""

    @property
    def affinity(self) -> str:
        """SQLite's rules (datatype3 docs, section 3.1): INT -> INTEGER; CHAR, CLOB, TEXT
        -> TEXT; BLOB or no type -> BLOB; REAL, FLOA, DOUB -> REAL; else NUMERIC."""
        t = self.declared_type.upper()
        if "INT" in t:
            return "INTEGER"
        if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
            return "TEXT"
        if not t or "BLOB" in t:
            return "BLOB"
        if any(k in t for k in ("REAL", "FLOA", "DOUB")):
            return "REAL"
        return "NUMERIC"

    @property
    def numeric(self) -> bool:
        return self.affinity in ("INTEGER", "REAL", "NUMERIC")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]


def _function_allowed(name: str | None) -> bool:
    lowered = (name or "").lower()
    return lowered not in _DENIED_FUNCTIONS and "file" not in lowered


def _build_authorizer(action: int, arg1: Any, arg2: Any, db: Any, trigger: Any) -> int:
    # Running the context's DDL: CREATE TABLE, which writes SQLite's own catalogue.
    if action == sqlite3.SQLITE_CREATE_TABLE:
        return sqlite3.SQLITE_OK
    if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE) and arg1 in _CATALOGUE:
        return sqlite3.SQLITE_OK
    return _read_only_authorizer(action, arg1, arg2, db, trigger)


def _fill_authorizer(action: int, arg1: Any, arg2: Any, db: Any, trigger: Any) -> int:
    # Our INSERTs, which also evaluate the context's CHECK and generated-column expressions.
    if action == sqlite3.SQLITE_INSERT and arg1 not in _CATALOGUE:
        return sqlite3.SQLITE_OK
    return _read_only_authorizer(action, arg1, arg2, db, trigger)


def _read_only_authorizer(action: int, arg1: Any, arg2: Any, db: Any, trigger: Any) -> int:
    # Everything not listed is refused: writes, CREATE/DROP/ALTER, ATTACH/DETACH, PRAGMA
    # (also the pragma_* table-valued functions, which ask for SQLITE_PRAGMA), transactions,
    # VACUUM, ANALYZE, REINDEX.
    if action in _READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and _function_allowed(arg2):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def create_table_statements(context: str) -> list[str]:
    """The CREATE TABLE statements of ``context``, each as written; anything else is dropped.

    Statements are split on the tokenizer's semicolons (so a ``;`` inside a string does not
    split) and each must parse with sqlglot as a CREATE TABLE with a column list.
    """
    text = context[:MAX_CONTEXT_CHARS]
    try:
        tokens = sqlglot.Dialect.get_or_raise("sqlite").tokenize(text)
        cuts = [t.start for t in tokens if t.token_type == TokenType.SEMICOLON]
    except (sqlglot.errors.SqlglotError, RecursionError):
        cuts = [i for i, ch in enumerate(text) if ch == ";"]
    pieces, begin = [], 0
    for cut in [*cuts, len(text)]:
        pieces.append(text[begin:cut].strip())
        begin = cut + 1
    statements = []
    for piece in pieces:
        if not piece:
            continue
        try:
            tree = sqlglot.parse_one(piece, read="sqlite")
        except (sqlglot.errors.SqlglotError, RecursionError):
            continue
        if (
            isinstance(tree, exp.Create)
            and str(tree.args.get("kind") or "").upper() == "TABLE"
            and isinstance(tree.this, exp.Schema)
        ):
            statements.append(piece)
        if len(statements) >= MAX_TABLES:
            break
    return statements


class SandboxDatabase:
    """One in-memory database: tables from checked DDL, rows from us, then sealed."""

    def __init__(self, ddl: Sequence[str], *, timeout_s: float, row_cap: int) -> None:
        self.timeout_s = timeout_s
        self.row_cap = row_cap
        self._deadline = math.inf
        # check_same_thread=False: the task may score from a worker thread; SqlTask
        # serialises use with a lock.
        self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn = self._conn
        _set_limits(conn)
        # Sorts and temporary b-trees of big queries stay in memory, never in temp files.
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.set_progress_handler(self._past_deadline, PROGRESS_STEPS)
        conn.set_authorizer(_build_authorizer)
        self._deadline = time.monotonic() + 10 * timeout_s
        for statement in ddl:
            try:
                conn.execute(statement)
            except Exception:  # noqa: BLE001 - a broken or refused statement is skipped
                continue
        self._deadline = math.inf
        conn.set_authorizer(None)
        self.tables = self._read_schema()  # our own PRAGMA, before any authorizer
        conn.set_authorizer(_fill_authorizer)

    def _past_deadline(self) -> bool:
        return time.monotonic() > self._deadline

    def _read_schema(self) -> tuple[Table, ...]:
        names = [
            r[0]
            for r in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
        ]
        tables = []
        for name in names:
            info = self._conn.execute("SELECT name, type FROM pragma_table_info(?)", (name,))
            columns = tuple(Column(str(c), str(t or "")) for c, t in info)
            tables.append(Table(name, columns))
        return tuple(tables)

    def insert(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows (one value per column of ``table``); a row the schema refuses (a
        CHECK, a UNIQUE, a STRICT type) is skipped."""
        quoted = ", ".join('"' + c.name.replace('"', '""') + '"' for c in table.columns)
        marks = ", ".join("?" for _ in table.columns)
        name = table.name.replace('"', '""')
        sql = f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})'
        self._deadline = time.monotonic() + 10 * self.timeout_s
        try:
            for row in rows:
                try:
                    self._conn.execute(sql, tuple(row))
                except (sqlite3.Error, OverflowError):
                    continue
        finally:
            self._deadline = math.inf

    def seal(self) -> None:
        """From now on the database only answers reads."""
        self._conn.set_authorizer(None)
        self._conn.execute("PRAGMA query_only = ON")  # a second lock behind the authorizer
        self._conn.set_authorizer(_read_only_authorizer)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one query; raise QueryError (user-readable) when it fails or passes a limit."""
        self._deadline = time.monotonic() + self.timeout_s
        try:
            cursor = self._conn.execute(sql)
            rows: list[tuple[Any, ...]] = []
            size = 0
            while True:
                batch = cursor.fetchmany(500)
                if not batch:
                    break
                rows.extend(batch)
                if len(rows) > self.row_cap:
                    raise QueryError(f"more than {self.row_cap} rows")
                size += sum(len(v) for r in batch for v in r if isinstance(v, (str, bytes)))
                if size > MAX_RESULT_BYTES:
                    raise QueryError(f"result larger than {MAX_RESULT_BYTES // 1_000_000} MB")
            cursor.close()
            return rows
        except QueryError:
            raise
        except sqlite3.OperationalError as exc:
            if str(exc) == "interrupted":
                raise QueryError(f"timed out after {self.timeout_s:g} s") from None
            raise QueryError(_sqlite_message(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise QueryError(_sqlite_message(exc)) from None
        except Exception as exc:  # noqa: BLE001 - e.g. a NUL in the text, undecodable bytes
            raise QueryError(f"cannot run: {exc}") from None
        finally:
            self._deadline = math.inf

    def close(self) -> None:
        self._conn.close()


def _set_limits(conn: sqlite3.Connection) -> None:
    # Connection.setlimit is Python 3.11+. On 3.10 the SQLite defaults stay (1 GB values,
    # LIKE patterns of 50,000): ATTACH is still refused by the authorizer, but one query
    # may then build values big enough to take seconds and gigabytes.
    if not hasattr(conn, "setlimit"):
        return
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_CONTEXT_CHARS)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000)


def _sqlite_message(exc: Exception) -> str:
    message = str(exc)
    if message.startswith("not authorized"):
        return f"not allowed ({message})"
    return f"execution error: {message}"


# ---------------------------------------------------------------------------------------
# Rows. What the gold query says about the data: literals per column, joins, numeric use.

_INT = re.compile(r"[+-]?\d{1,15}")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d{1,3})?")
# By database index: how often a random row takes one of the gold's literals (the first
# databases match the gold's WHERE often, the last rarely and without a witness row), and
# how many distinct values a column draws from (few: duplicates for GROUP BY, DISTINCT and
# joins; then many).
_DENSITY = (0.5, 0.25, 0.1)
_POOL_SIZE = (3, 6, 12)

Key = tuple[str, str]
"""(table, column), both lower-case."""


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
    """Sorted on or under MIN/MAX: filled without ties so LIMIT 1 has one answer."""

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
    rng: random.Random,
) -> _ClassValues:
    conditions = [c for m in members for c in seeds.conditions.get(m, [])]
    if numeric:
        pool: list[Any] = rng.sample(range(1, 100), size)
    else:
        pool = [f"{rep[1]} {k}" for k in rng.sample(range(1, 100), size)]
    candidates: list[Any] = []
    for condition in conditions:
        candidates += _neighbours(condition, textual=textual)
    candidates = list(dict.fromkeys(candidates))  # unique, in order
    witness = None
    if candidates:
        met = {v: sum(_holds(v, c, textual=textual) for c in conditions) for v in candidates}
        best = max(met.values())
        witness = rng.choice([v for v in candidates if met[v] == best])
    return _ClassValues(pool, candidates, witness)


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
    random, with the literals mixed in at the level's density.
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
    classes = {
        rep: _class_values(
            rep, seeds, keys, numeric=numeric[rep], textual=textual[rep], size=size, rng=rng
        )
        for rep, keys in sorted(members.items())
    }
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        reps = [seeds.find((table.name.lower(), c.name.lower())) for c in table.columns]
        tie_free = [any(m in seeds.ordered for m in members[rep]) for rep in reps]
        base: list[list[Any]] = []
        for rep, unique in zip(reps, tie_free):
            if unique:
                picks = rng.sample(range(1, max(1000, 10 * n_rows)), n_rows)
                base.append(picks if numeric[rep] else [f"{rep[1]} {k}" for k in picks])
            else:
                base.append([rng.choice(classes[rep].pool) for _ in range(n_rows)])
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
                elif tie_free[i] or (plan is not None and rng.random() < 0.5):
                    row.append(base[i][r])
                else:
                    # The class's first pool value, the same in every table, so that
                    # the witness rows join up.
                    row.append(values.pool[0])
            table_rows.append(tuple(row))
        rows[table.name] = table_rows
    return rows


def _is_numeric(column: Column, key: Key, seeds: Seeds) -> bool:
    if column.numeric or key in seeds.numeric:
        return True
    return any(
        _number(str(v)) is not None
        for c in seeds.conditions.get(key, [])
        if c.op not in ("like", "glob")
        for v in c.values
    )
