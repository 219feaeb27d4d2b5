"""The databases that judge SQL: built from a context, seeded from the gold, run untrusted.

Everything a scored file holds is hostile: the schema (``context``), the gold query and the
model output. A database is built in three steps: the context's CREATE TABLE statements are
parsed into tables (``tables_from_context``) and our own DDL, written from the parsed names
and types only, runs under an authorizer that allows only table creation; our own code
inserts rows; then the connection is sealed (``PRAGMA query_only`` plus an authorizer that
allows only reads), and from then on queries run with a time limit, a row cap and a size
cap. Databases live in memory only and extension loading is never enabled.

sql-create-context writes one CREATE TABLE per use of a table (self-joins, subqueries), so
a context may create a table twice with different columns, and a column twice in different
case (``x VARCHAR, X VARCHAR``); SQLite refuses both. The statements of one table (names
compared case-insensitively, as SQLite does) become one table with the union of their
columns, one per case-insensitive name, the first declaration winning.

The rows come from ``sql_rows``; this module only inserts them.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from dataclasses import dataclass
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
MAX_COLUMNS = 200
"""Columns kept per table (SQLite allows 2,000; real schemas have a few dozen)."""
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
    """The type as SQLite sees it in our DDL ("TEXT", "INTEGER", "" when none)."""
    unique: bool = False
    """Declared PRIMARY KEY or UNIQUE on its own (not as part of a composite key)."""

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
    # Running our DDL (written from the context's parsed tables): CREATE TABLE, which writes
    # SQLite's own catalogue.
    if action == sqlite3.SQLITE_CREATE_TABLE:
        return sqlite3.SQLITE_OK
    if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE) and arg1 in _CATALOGUE:
        return sqlite3.SQLITE_OK
    return _read_only_authorizer(action, arg1, arg2, db, trigger)


def _fill_authorizer(action: int, arg1: Any, arg2: Any, db: Any, trigger: Any) -> int:
    # Our INSERTs (the tables have no CHECK or DEFAULT: our DDL writes none).
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


_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_ ]{0,40}(\(\s*\d{1,9}\s*(,\s*\d{1,9}\s*)?\))?")
"""A type we write back into our DDL; anything else (hostile text) becomes no type."""


def tables_from_context(context: str) -> tuple[Table, ...]:
    """The tables the CREATE TABLE statements of ``context`` declare, merged per name.

    Statements are split on the tokenizer's semicolons (so a ``;`` inside a string does not
    split); each must parse with sqlglot as a CREATE TABLE with a column list, anything else
    is dropped. Only names, types and single-column PRIMARY KEY / UNIQUE are kept: no
    CHECK, DEFAULT or generated expression of the context ever runs.
    """
    merged: dict[str, tuple[str, dict[str, Column]]] = {}
    for tree in _create_table_trees(context[:MAX_CONTEXT_CHARS]):
        name = tree.this.this.name
        if not name:
            continue
        if name.lower() not in merged:
            if len(merged) >= MAX_TABLES:
                continue
            merged[name.lower()] = (name, {})
        columns = merged[name.lower()][1]
        unique = _unique_columns(tree.this)
        for column_name, declared_type in _column_defs(tree.this):
            key = column_name.lower()
            if key in columns:
                if key in unique and not columns[key].unique:
                    columns[key] = Column(columns[key].name, columns[key].declared_type, True)
            elif len(columns) < MAX_COLUMNS:
                columns[key] = Column(column_name, declared_type, key in unique)
    return tuple(
        Table(name, tuple(columns.values())) for name, columns in merged.values() if columns
    )


def _create_table_trees(text: str) -> list[exp.Create]:
    try:
        tokens = sqlglot.Dialect.get_or_raise("sqlite").tokenize(text)
        cuts = [t.start for t in tokens if t.token_type == TokenType.SEMICOLON]
    except (sqlglot.errors.SqlglotError, RecursionError):
        cuts = [i for i, ch in enumerate(text) if ch == ";"]
    trees, begin = [], 0
    for cut in [*cuts, len(text)]:
        piece, begin = text[begin:cut].strip(), cut + 1
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
            and isinstance(tree.this.this, exp.Table)
        ):
            trees.append(tree)
    return trees


def _column_defs(schema: exp.Schema) -> list[tuple[str, str]]:
    out = []
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef) and item.name:
            kind = item.args.get("kind")
            declared = kind.sql(dialect="sqlite") if isinstance(kind, exp.DataType) else ""
            out.append((item.name, declared if _TYPE.fullmatch(declared) else ""))
        elif isinstance(item, exp.Identifier) and item.name:  # a column without a type
            out.append((item.name, ""))
    return out


def _unique_columns(schema: exp.Schema) -> set[str]:
    """Lower-case names of the columns declared PRIMARY KEY or UNIQUE on their own."""
    out = set()
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            kinds = [c.args.get("kind") for c in item.args.get("constraints") or []]
            if any(
                isinstance(k, (exp.PrimaryKeyColumnConstraint, exp.UniqueColumnConstraint))
                for k in kinds
            ):
                out.add(item.name.lower())
        elif isinstance(item, (exp.PrimaryKey, exp.UniqueColumnConstraint)):
            names = [i.name.lower() for i in item.find_all(exp.Identifier)]
            if len(names) == 1:
                out.add(names[0])
    return out


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_table_sql(table: Table) -> str:
    """Our DDL for ``table``: quoted names and checked types, nothing else."""
    columns = ", ".join(
        f"{_quoted(c.name)} {c.declared_type}".rstrip() for c in table.columns
    )
    return f"CREATE TABLE {_quoted(table.name)} ({columns})"


def _allow_all(*_: Any) -> int:
    """Our own statements between phases. (Python 3.10 cannot clear an authorizer with None.)"""
    return sqlite3.SQLITE_OK


class SandboxDatabase:
    """One in-memory database: tables from our DDL, rows from us, then sealed."""

    def __init__(self, tables: Sequence[Table], *, timeout_s: float, row_cap: int) -> None:
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
        created = []
        for table in tables:
            try:
                conn.execute(create_table_sql(table))
            except Exception:  # noqa: BLE001 - e.g. a NUL in a name: the table is skipped
                continue
            created.append(table)
        self._deadline = math.inf
        self.tables: tuple[Table, ...] = tuple(created)
        self.last_columns: tuple[str, ...] = ()
        """The column names of the last query's result (the Playground shows them)."""
        conn.set_authorizer(_fill_authorizer)

    def _past_deadline(self) -> bool:
        return time.monotonic() > self._deadline

    def insert(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows (one value per column of ``table``); a row SQLite refuses is skipped."""
        columns = ", ".join(_quoted(c.name) for c in table.columns)
        marks = ", ".join("?" for _ in table.columns)
        sql = f"INSERT INTO {_quoted(table.name)} ({columns}) VALUES ({marks})"
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
        self._conn.set_authorizer(_allow_all)
        self._conn.execute("PRAGMA query_only = ON")  # a second lock behind the authorizer
        self._conn.set_authorizer(_read_only_authorizer)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one query; raise QueryError (user-readable) when it fails or passes a limit."""
        self._deadline = time.monotonic() + self.timeout_s
        try:
            cursor = self._conn.execute(sql)
            self.last_columns = tuple(str(d[0]) for d in cursor.description or ())
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


PY310_HEAP_LIMIT = 256 << 20
"""Python 3.10 only: SQLite's heap cap for the whole process, in place of per-value limits."""


def _set_limits(conn: sqlite3.Connection) -> None:
    # Connection.setlimit is Python 3.11+. On 3.10 the SQLite defaults would stay (1 GB
    # values), so a doubling recursive CTE could take seconds and gigabytes; a process-wide
    # hard heap limit stops it instead. ATTACH is refused by the authorizer either way.
    if not hasattr(conn, "setlimit"):
        conn.execute(f"PRAGMA hard_heap_limit = {PY310_HEAP_LIMIT}")
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

