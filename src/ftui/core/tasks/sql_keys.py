"""Which columns of the SQL task's databases hold a key: distinct values within their table.

Spider's databases have primary keys, and much of what counts as the same query there
relies on them: ``x IN (SELECT id ...)`` equals a join on ``id`` only when ``id`` is unique
on that side, and a bare column under ``GROUP BY T1.id`` has one value per group only when
``id`` identifies the row. sql-create-context writes every column as VARCHAR or INTEGER and
declares no keys, so keys are read from the names, the way Spider's schemas name them.

The rule: a column is a key of its table when it is declared PRIMARY KEY or UNIQUE on its
own, or its name looks like a key (``id``, ``*_id``, or ``*id`` such as ``stuid``,
``PetID``, ``uid``, except English words such as ``paid`` or ``valid``) and it names its own
table's rows:

- it is ``id``;
- its stem (the name without ``id``/``_id``) is the table's name in the singular
  (``singer.singer_id``, ``pets.petid``), or a one-word table's name starts with it
  (``student.stuid``, ``continents.contid``);
- or the gold query compares it with columns of other tables none of whose names look like
  a key (``flights.airline = airlines.uid``: ``uid`` is what ``airline`` refers to).

A key-like column that is none of these (``concert.stadium_id``, ``has_pet.petid``) is a
reference to another table's key: it repeats, so that counts per group and HAVING have
something to tell apart, and it takes its values from the key it refers to.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from ftui.core.tasks.sql_sandbox import Table

Key = tuple[str, str]
"""(table, column), both lower-case."""

_WORDS_ENDING_IN_ID = frozenset(
    "paid unpaid prepaid repaid overpaid underpaid said laid mislaid raid maid valid invalid "
    "void avoid acid arid avid rapid rigid solid fluid humid hybrid liquid lucid vivid timid "
    "squid stupid candid splendid morbid torrid insipid bid kid lid rid did hid grid "
    "android pyramid orchid druid".split()
)


def looks_like_key(name: str) -> bool:
    """``id``, ``*_id`` or ``*id`` (``stuid``, ``PetID``), but not a word like ``paid``."""
    lowered = name.lower()
    if lowered == "id" or lowered.endswith("_id"):
        return True
    last_word = lowered.rsplit("_", 1)[-1]
    return lowered.endswith("id") and len(lowered) > 2 and last_word not in _WORDS_ENDING_IN_ID


def _stem(column: str) -> str:
    lowered = column.lower()
    stem = lowered[:-3] if lowered.endswith("_id") else lowered[:-2]
    return stem.replace("_", "")


def _singular(table: str) -> str:
    name = table.lower().replace("_", "")
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def _names_its_table(table: str, column: str) -> bool:
    if column.lower() == "id":
        return True
    stem, singular = _stem(column), _singular(table)
    if len(stem) < 2:
        return False
    return stem == singular or ("_" not in table and singular.startswith(stem))


def key_columns(
    tables: Sequence[Table], classes: Mapping[Key, list[Key]], find: Callable[[Key], Key]
) -> set[Key]:
    """The (table, column) pairs that get distinct values within their table.

    ``classes``: every column class (columns that share values: joined by the gold or of
    the same name) as its representative -> members; ``find``: a column's representative.
    """
    keys: set[Key] = set()
    for table in tables:
        for column in table.columns:
            key = (table.name.lower(), column.name.lower())
            if column.unique:
                keys.add(key)
            elif looks_like_key(column.name):
                others = [m for m in classes.get(find(key), []) if m[0] != key[0]]
                referenced = bool(others) and not any(looks_like_key(m[1]) for m in others)
                if referenced or _names_its_table(table.name, column.name):
                    keys.add(key)
    return keys
