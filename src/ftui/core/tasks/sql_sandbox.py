"""The databases that judge SQL: built from a context, seeded from the gold, run untrusted.

Everything a scored file holds is hostile: the schema (``context``), the gold query and the
model output. A database is built in three steps: the context's CREATE TABLE statements run
one at a time under an authorizer that allows only table creation; our own code reads the
schema back and inserts rows; then the connection is sealed (``PRAGMA query_only`` plus an
authorizer that allows only reads), and from then on queries run with a time limit, a row
cap and a size cap. Databases live in memory only and extension loading is never enabled.

The rows come from ``sql_rows``; this module only inserts them.
"""

from __future__ import annotations

import math
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


def _allow_all(*_: Any) -> int:
    """Our own statements between phases. (Python 3.10 cannot clear an authorizer with None.)"""
    return sqlite3.SQLITE_OK


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
        conn.set_authorizer(_allow_all)
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
        self._conn.set_authorizer(_allow_all)
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

