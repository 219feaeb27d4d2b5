"""The sql task: text-to-SQL outputs judged by parsing, normalised text and execution.

See DESIGN.md, Tasks. Execution compares gold and prediction on ``n_databases`` small
SQLite databases built from the example's CREATE TABLE context and filled with
deterministic pseudo-random rows that contain the gold query's literals in the columns
they are compared with, so that WHERE clauses select some rows but not all (the idea of
Zhong et al., 2020, "Semantic Evaluation for Text-to-SQL with Distilled Test Suites").
The databases and the untrusted-query limits live in ``sql_sandbox``, the rows that
fill them in ``sql_rows`` (keys in ``sql_keys``).

Results are compared as Spider's test-suite evaluation compares them (Zhong et al., 2020;
taoyds/test-suite-sql-eval): as multisets of rows, in order when the gold has ORDER BY;
``execution`` accepts the prediction's columns in any order, ``execution_strict`` wants the
gold's. A gold query that cannot run on its own context (the published datasets have such
rows) does not count against the model: the score says ``scorable: False`` and the rates
other than ``valid`` leave it out.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from ftui.core.errors import ConfigError
from ftui.core.tasks.base import Score, is_scorable, rate
from ftui.core.tasks.sql_rows import rows_for, seeds_from
from ftui.core.tasks.sql_sandbox import QueryError, SandboxDatabase, tables_from_context

# sqlglot warns ("Falling back to parsing as a 'Command'") on statements it only half
# parses; model output is full of them, and an unconfigured logger would print them over
# the TUI. The verdict carries the reason instead.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

MAX_PREDICTION_CHARS = 20_000
"""A longer model output is invalid without being parsed (real queries are < 1,000)."""
MAX_REFERENCE_CHARS = 100_000
_CACHE_SIZE = 32
"""(context, gold) pairs whose databases and gold results are kept (3 connections each)."""
MAX_COLUMN_ORDERS = 1000
"""Column orders tried before a result is called different (the test-suite evaluation
prunes the same search; real results have a few columns)."""
UNSCORABLE = "reference query cannot run on its context"

_DIALECT = sqlglot.Dialect.get_or_raise("sqlite")
_FENCE = re.compile(r"^```(?:[\w+-]*[ \t]*\n)?(.*?)\n?[ \t]*```$", re.DOTALL)
_CREATE_TABLE = re.compile(r"\bCREATE\s+TABLE\b", re.IGNORECASE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def clean_sql(text: str) -> str:
    """Model output as a query: whitespace, a surrounding ``` fence and one trailing ``;``
    removed."""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def context_from_text(text: str) -> str:
    """The CREATE TABLE statements inside free text (a chat prompt), joined with ``"; "``.

    A statement runs from ``CREATE TABLE`` to the parenthesis that closes its column list;
    quotes are respected, an unclosed statement is dropped.
    """
    found: list[str] = []
    pos = 0
    while (match := _CREATE_TABLE.search(text, pos)) is not None:
        end = _column_list_end(text, match.end())
        if end is None:
            pos = match.end()
            continue
        found.append(" ".join(text[match.start() : end].split()))
        pos = end
    return "; ".join(found)


def _column_list_end(text: str, start: int) -> int | None:
    depth, quote, i = 0, "", start
    closing = {"'": "'", '"': '"', "`": "`", "[": "]"}
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in closing:
            quote = closing[ch]
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
            if depth < 0:
                return None
        elif ch == ";" and depth == 0:
            return None
        i += 1
    return None


def normalised_tokens(sql: str, names: frozenset[str] = frozenset()) -> tuple | None:
    """The query as tokens with case, whitespace and quote style normalised (None if it does
    not tokenize). Keywords and identifiers are lower-cased, string contents keep their
    case; a double-quoted token is a string unless it names a table or column in ``names``
    (lower-case) or sits where only a name can (after ``AS``, around a ``.``), as in SQLite.
    """
    try:
        tokens = _DIALECT.tokenize(sql)
    except (sqlglot.errors.SqlglotError, RecursionError):
        return None
    out = []
    for i, token in enumerate(tokens):
        kind, text = token.token_type, token.text
        if kind == TokenType.STRING:
            out.append(("s", text))
        elif kind == TokenType.IDENTIFIER and _is_string_like(sql, tokens, i, names):
            out.append(("s", text))
        else:
            out.append(("t", text.lower()))
    return tuple(out)


def _is_string_like(sql: str, tokens: list, i: int, names: frozenset[str]) -> bool:
    token = tokens[i]
    if sql[token.start : token.start + 1] != '"' or token.text.lower() in names:
        return False
    before = tokens[i - 1].token_type if i > 0 else None
    after = tokens[i + 1].token_type if i + 1 < len(tokens) else None
    return before not in (TokenType.ALIAS, TokenType.DOT) and after != TokenType.DOT


def check_query(sql: str) -> tuple[exp.Expression | None, str | None]:
    """(tree, None) when ``sql`` is exactly one read-only query, else (None, why)."""
    if not sql:
        return None, "empty output"
    if len(sql) > MAX_PREDICTION_CHARS:
        return None, f"output too long ({len(sql)} characters; limit {MAX_PREDICTION_CHARS})"
    try:
        trees = [t for t in sqlglot.parse(sql, read="sqlite") if t is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
        what = first.get("description") or str(exc)
        return None, "parse error: " + _ANSI.sub("", str(what)).splitlines()[0] + where
    except RecursionError:
        return None, "parse error: too deeply nested"
    except Exception as exc:  # noqa: BLE001 - TokenError and sqlglot's own slips on garbage
        return None, "parse error: " + (_ANSI.sub("", str(exc)).splitlines() or ["?"])[0]
    if not trees:
        return None, "empty output"
    if len(trees) > 1:
        return None, f"{len(trees)} statements; expected one query"
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        return None, f"not a read-only query: {_statement_kind(tree)}"
    return tree, None


def _statement_kind(tree: exp.Expression) -> str:
    kind = tree.this if isinstance(tree, exp.Command) else tree.key  # VACUUM, INSERT, ...
    return str(kind).upper()


def _read_gold(gold: str) -> tuple[exp.Expression | None, str | None]:
    """(tree or None, why the gold cannot be used or None). Unlike a prediction, a gold
    query sqlglot cannot parse still runs: sqlglot does not read every SQLite query."""
    if not gold:
        return None, "empty"
    if len(gold) > MAX_REFERENCE_CHARS:
        return None, f"too long ({len(gold)} characters)"
    try:
        trees = [t for t in sqlglot.parse(gold, read="sqlite") if t is not None]
    except Exception:  # noqa: BLE001 - ParseError, TokenError, RecursionError, slips
        return None, None
    if len(trees) != 1:
        return None, f"{len(trees)} statements; expected one query"
    if not isinstance(trees[0], exp.Query):
        return None, f"not a read-only query: {_statement_kind(trees[0])}"
    return trees[0], None


# ---------------------------------------------------------------------------------------


def _context(inputs: Mapping[str, str]) -> str:
    """The CREATE TABLE statements of an example: its ``context``, or those in its text (chat data)."""
    return str(inputs.get("context") or "") or context_from_text(str(inputs.get("input") or ""))


@dataclass
class _Judge:
    """Everything about one (context, gold) pair that does not depend on the prediction."""

    databases: list[SandboxDatabase]
    names: frozenset[str]
    gold_tokens: tuple | None
    gold_results: list[list[tuple[Any, ...]]]
    gold_error: str | None
    ordered: bool

    def close(self) -> None:
        for database in self.databases:
            database.close()


def _canonical(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # Floats to 12 significant digits: AVG over the same rows in another order may differ
    # in the last bits.
    return [tuple(float(f"{v:.12g}") if isinstance(v, float) else v for v in row) for row in rows]


def same_results(
    gold: list[tuple[Any, ...]],
    predicted: list[tuple[Any, ...]],
    *,
    ordered: bool,
    any_column_order: bool,
) -> bool:
    """The same rows (in the same order when ``ordered``, else as multisets); with
    ``any_column_order``, after some reordering of the predicted columns."""
    gold, predicted = _canonical(gold), _canonical(predicted)
    if not gold and not predicted:
        return True  # no rows: the test-suite evaluation ignores the column count here
    if len(gold) != len(predicted) or len(gold[0]) != len(predicted[0]):
        return False
    if not any_column_order:
        return _same_rows(gold, predicted, ordered=ordered)
    # Rows as bags of values must agree under any column order; most differences stop here.
    if not _same_rows(_as_bags(gold), _as_bags(predicted), ordered=ordered):
        return False
    width = len(gold[0])
    gold_columns = [_column(gold, i, ordered=ordered) for i in range(width)]
    predicted_columns = [_column(predicted, j, ordered=ordered) for j in range(width)]
    # Predicted column j can stand for gold column i only if they hold the same values.
    options = [
        [j for j in range(width) if predicted_columns[j] == gold_columns[i]] for i in range(width)
    ]
    for tried, order in enumerate(_column_orders(options, [], set())):
        if tried >= MAX_COLUMN_ORDERS:
            return False
        moved = [tuple(row[j] for j in order) for row in predicted]
        if _same_rows(gold, moved, ordered=ordered):
            return True
    return False


def _same_rows(gold: list, predicted: list, *, ordered: bool) -> bool:
    return gold == predicted if ordered else Counter(gold) == Counter(predicted)


def _as_bags(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(sorted(row, key=_value_order)) for row in rows]


def _value_order(value: Any) -> tuple[int, Any]:
    # 2 and 2.0 are one value (as in the comparison itself), so numbers sort together.
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, repr(value))


def _column(rows: list[tuple[Any, ...]], i: int, *, ordered: bool) -> Any:
    values = [row[i] for row in rows]
    return values if ordered else Counter(values)


def _column_orders(
    options: list[list[int]], chosen: list[int], taken: set[int]
) -> Iterator[list[int]]:
    if len(chosen) == len(options):
        yield list(chosen)
        return
    for j in options[len(chosen)]:
        if j not in taken:
            chosen.append(j)
            taken.add(j)
            yield from _column_orders(options, chosen, taken)
            taken.discard(j)
            chosen.pop()


class SqlTask:
    """Text-to-SQL (sql-create-context style): valid, exact and execution match."""

    name = "sql"
    metric_keys = ("valid", "exact", "execution", "execution_strict")

    def __init__(
        self,
        *,
        timeout_s: float = 1.0,
        row_cap: int = 10_000,
        n_databases: int = 3,
        rows_per_table: int = 12,
        seed: int = 0,
    ) -> None:
        for field_name, value, low in (
            ("timeout_s", timeout_s, 0.0),
            ("row_cap", row_cap, 0),
            ("n_databases", n_databases, 0),
            ("rows_per_table", rows_per_table, 0),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= low:
                raise ConfigError(f"task 'sql': {field_name} must be > {low:g}, got {value!r}")
        self.timeout_s = float(timeout_s)
        self.row_cap = int(row_cap)
        self.n_databases = int(n_databases)
        self.rows_per_table = int(rows_per_table)
        self.seed = int(seed)
        self._cache: OrderedDict[tuple[str, str], _Judge] = OrderedDict()
        self._lock = threading.Lock()

    def score(self, prediction: str, reference: str, inputs: Mapping[str, str]) -> Score:
        """Judge one output; never raises on any text (the error goes in ``Score.error``)."""
        try:
            with self._lock:
                return self._score(str(prediction), str(reference), inputs)
        except Exception as exc:  # noqa: BLE001 - last line of defence, see base.py
            return Score(False, False, False, error=f"could not score: {type(exc).__name__}")

    def validity(self, prediction: str, inputs: Mapping[str, str]) -> str | None:
        """Whether the output runs as one read-only query on databases built from the context
        alone (no gold query seeds their rows: validity does not depend on them)."""
        try:
            with self._lock:
                judge = self._judge(_context(inputs), "")
                return self._run_prediction(clean_sql(str(prediction)), judge)[1]
        except Exception as exc:  # noqa: BLE001 - last line of defence, see base.py
            return f"could not judge: {type(exc).__name__}"

    def aggregate(self, scores: Sequence[Score]) -> dict[str, float]:
        """``valid`` over every score; the others over the scorable ones only (a reference
        that cannot run on its context says nothing about the model), as published
        evaluations count."""
        scorable = [s for s in scores if is_scorable(s.details)]
        return {
            "valid": rate([s.valid for s in scores]),
            "exact": rate([s.exact for s in scorable]),
            "execution": rate([s.execution for s in scorable]),
            "execution_strict": rate([s.details.get("execution_strict") for s in scorable]),
        }

    def _score(self, prediction: str, reference: str, inputs: Mapping[str, str]) -> Score:
        context = _context(inputs)
        predicted, gold = clean_sql(prediction), clean_sql(reference)
        judge = self._judge(context, gold)
        exact = (
            len(predicted) <= MAX_PREDICTION_CHARS
            and judge.gold_tokens is not None
            and normalised_tokens(predicted, judge.names) == judge.gold_tokens
        )
        results, problem = self._run_prediction(predicted, judge)
        if judge.gold_error is not None:
            # Not the model's fault: no verdict on execution, and left out of the rates.
            why = f"{UNSCORABLE}: {judge.gold_error}"
            error = why if problem in (None, judge.gold_error) else f"{why}; the output: {problem}"
            return Score(
                valid=problem is None,
                exact=exact,
                execution=None,
                details={"scorable": False},
                error=error,
            )
        if problem is not None:
            details = {"scorable": True, "execution_strict": False}
            return Score(valid=False, exact=exact, execution=False, details=details, error=problem)
        pairs = list(zip(judge.gold_results, results))
        execution = all(
            same_results(g, p, ordered=judge.ordered, any_column_order=True) for g, p in pairs
        )
        strict = execution and all(
            same_results(g, p, ordered=judge.ordered, any_column_order=False) for g, p in pairs
        )
        details = {"scorable": True, "execution_strict": strict}
        return Score(valid=True, exact=exact, execution=execution, details=details)

    def result_rows(self, prediction: str, reference: str,
                    inputs: Mapping[str, str]) -> tuple[tuple[str, ...], list[tuple[Any, ...]], str | None]:
        """What ``prediction`` returns on the first database ``score`` judges it on (built from
        the context, seeded with the reference's literals): (columns, rows, None), or
        ((), [], why) when it does not run. Never raises on any text."""
        try:
            with self._lock:
                context = str(inputs.get("context") or "") or context_from_text(str(inputs.get("input") or ""))
                predicted = clean_sql(str(prediction))
                _, problem = check_query(predicted)
                if problem is not None:
                    return (), [], problem
                database = self._judge(context, clean_sql(str(reference))).databases[0]
                rows = database.query(predicted)
                return database.last_columns, rows, None
        except QueryError as exc:
            return (), [], str(exc)
        except Exception as exc:  # noqa: BLE001 - last line of defence, see base.py
            return (), [], f"could not run: {type(exc).__name__}"

    @staticmethod
    def _run_prediction(predicted: str, judge: _Judge) -> tuple[list, str | None]:
        """The prediction's results on every database, or why it is invalid."""
        _, problem = check_query(predicted)
        if problem is not None:
            return [], problem
        results = []
        for database in judge.databases:
            try:
                results.append(database.query(predicted))
            except QueryError as exc:
                return [], str(exc)
        return results, None

    def _judge(self, context: str, gold: str) -> _Judge:
        key = (context, gold)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        judge = self._build_judge(context, gold)
        self._cache[key] = judge
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)[1].close()
        return judge

    def _build_judge(self, context: str, gold: str) -> _Judge:
        # A stable seed (sha256, not the salted hash()) so scores repeat across processes.
        digest = hashlib.sha256(
            f"{self.seed}\0{context}\0{gold}".encode("utf-8", "surrogatepass")
        ).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        declared = tables_from_context(context)
        databases = [
            SandboxDatabase(declared, timeout_s=self.timeout_s, row_cap=self.row_cap)
            for _ in range(self.n_databases)
        ]
        tables = databases[0].tables
        names = frozenset(
            [t.name.lower() for t in tables] + [c.name.lower() for t in tables for c in t.columns]
        )
        tree, gold_error = _read_gold(gold)
        seeds = seeds_from(tree, tables)
        for index, database in enumerate(databases):
            rows = rows_for(
                tables,
                seeds,
                index=index,
                n_databases=self.n_databases,
                n_rows=self.rows_per_table,
                rng=rng,
            )
            for table in tables:
                database.insert(table, rows[table.name])
            database.seal()
        gold_results = []
        if gold_error is None:
            try:
                gold_results = [database.query(gold) for database in databases]
            except QueryError as exc:
                gold_error = str(exc)
        ordered = isinstance(tree, exp.Query) and tree.args.get("order") is not None
        return _Judge(
            databases=databases,
            names=names,
            gold_tokens=normalised_tokens(gold, names)
            if len(gold) <= MAX_REFERENCE_CHARS
            else None,
            gold_results=gold_results,
            gold_error=gold_error,
            ordered=ordered,
        )
