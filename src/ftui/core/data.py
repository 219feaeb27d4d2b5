"""Reading datasets into ``Example``s, naming every bad row by line and field.

Sources: JSON Lines (OpenAI chat ``messages``, ``prompt``/``completion`` pairs, or any
columns with a field map), CSV, Parquet, and hub datasets through ``datasets``.
Rows are checked one by one; a bad row is recorded as an ``Issue`` and skipped, so a
report can list every problem at once. ``load`` callers decide whether issues are fatal.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import socket
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ftui.core.config import Preset, SplitSpec
from ftui.core.errors import ConfigError, DataError, OfflineError
from ftui.core.examples import Example

# Task field -> candidate source columns, first present wins (per file, from the first row).
DEFAULT_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "sql": {"question": ("question",), "context": ("context",), "reference": ("answer", "query", "sql")},
    "funcrep": {
        "text": ("target", "text", "sentence", "input"),
        "reference": ("meaning_representation", "mr", "reference", "output"),
    },
    "json": {"text": ("text", "input"), "reference": ("reference", "output", "json")},
    "text": {"input": ("input", "question", "text"), "reference": ("output", "reference", "answer", "target")},
}

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")

MAX_ROW_BYTES = 1 << 20
"""A row (a JSONL line, a CSV record) longer than this is refused: no example needs a
megabyte, and a runaway line would otherwise be tokenized and trained on."""


@dataclass(frozen=True)
class Issue:
    """A problem with one row (``line`` 0: the whole file)."""

    line: int
    message: str
    field: str | None = None
    file: str = ""
    """The file's name when the source is a folder of split files."""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        where = f"{self.file} {where}" if self.file else where
        fld = f", field '{self.field}'" if self.field else ""
        return f"{where}{fld}: {self.message}"


@dataclass
class Loaded:
    """What reading a source gave: good examples, bad rows, and how it was read."""

    source: str
    format: str
    """``chat``, ``prompt-completion``, ``columns`` (JSONL), ``csv``, ``parquet`` or ``hub``."""
    rows: int
    examples: list[Example] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    """Task field -> source column actually used (columns formats)."""
    limited_from: int = 0
    """Usable examples before a preset's ``limit`` picked some (0: no limit applied)."""
    named: dict[str, list[Example]] | None = None
    """Examples by ftui split (train, val, test) when the source has its own splits."""

    def raise_if_bad(self, most: int = 10) -> None:
        """Raise one DataError listing the first ``most`` issues, if there are any."""
        if not self.issues:
            return
        shown = "; ".join(str(i) for i in self.issues[:most])
        more = f"; and {len(self.issues) - most} more" if len(self.issues) > most else ""
        raise DataError(f"{len(self.issues)} bad row(s): {shown}{more}", path=self.source)


def load_file(path: str | Path, task: str, field_map: Mapping[str, str] | None = None, *,
              need_reference: bool = True) -> Loaded:
    """Read a local JSONL, JSON, CSV or Parquet file for ``task``. ``need_reference`` False:
    rows without a reference (no column, an empty cell, a chat ending in the user's turn) are
    read too, with ``reference`` "" (new data to predict on); their inputs are still required."""
    p = Path(path)
    if not p.exists():
        raise DataError("no such file", path=str(p))
    if p.is_dir():
        raise DataError("is a folder, not a data file", path=str(p))
    suffix = p.suffix.lower()
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(8192)
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", path=str(p)) from None
    if size == 0:
        raise DataError("the file is empty", path=str(p))
    nul = head.find(b"\x00")
    if suffix != ".parquet" and nul >= 0:
        kind = "CSV" if suffix == ".csv" else "JSON Lines"
        raise DataError(f"looks like a binary file (a NUL byte at offset {nul}), not {kind} text", path=str(p))
    if suffix == ".csv":
        return _from_rows(str(p), "csv", _csv_rows(p), task, field_map, need_reference)
    if suffix == ".parquet":
        return _from_rows(str(p), "parquet", _parquet_rows(p), task, field_map, need_reference)
    if suffix in (".jsonl", ".json", ".ndjson", ""):
        return _load_jsonl(p, task, field_map, need_reference)
    raise DataError(f"unknown file type '{suffix}'; use .jsonl, .csv or .parquet", path=str(p))


def load_preset_rows(preset: Preset, *, hub: bool = False, folder: str | Path | None = None,
                     fields: Mapping[str, str] | None = None) -> Loaded:
    """The preset's rows: its offline sample, its hub dataset (``hub``, or always for a preset
    without a sample), or a local ``folder`` holding the hub dataset's split files.
    ``fields``: the column map to use instead of the preset's (see ``field_map``)."""
    from ftui.core.presets import sample_path

    d = preset.data
    columns = fields or d.fields
    if folder is not None:
        loaded = load_split_folder(folder, preset.task, columns, d.splits or {"train": d.split})
    elif hub or not d.sample:
        if not d.hub:
            raise DataError(f"preset '{preset.name}' has no hub source; it ships its sample only")
        if d.splits:
            loaded = _merge(f"hub:{d.hub}", "hub", {
                ours: load_hub(d.hub, preset.task, columns, config=d.config, split=theirs, preset=preset)
                for ours, theirs in d.splits.items()})
        else:
            loaded = load_hub(d.hub, preset.task, columns, config=d.config, split=d.split, preset=preset)
    else:
        loaded = load_file(sample_path(preset), preset.task, columns)
    if d.limit and len(loaded.examples) > d.limit and loaded.named is None:
        rng = random.Random(preset.split.seed)
        picked = sorted(rng.sample(range(len(loaded.examples)), d.limit))
        loaded.limited_from = len(loaded.examples)
        loaded.examples = [loaded.examples[i] for i in picked]
    return loaded


def load_source(*, task: str, preset: Preset | None = None, data: str | Path | None = None,
                hub: bool = False, fields: Sequence[str] = ()) -> Loaded:
    """What a person named, read: a preset's offline sample or hub dataset, a data file, or a
    folder of split files (for a preset, its published splits). ``fields``: ``--field``
    items (see ``field_map``). The one place the CLI, the study driver and the TUI read data."""
    if hub and data is not None:
        raise ConfigError("--hub reads the preset's hub dataset and --data a local copy: give one of them")
    if hub and preset is None:
        raise ConfigError("--hub needs --preset NAME: the preset names the hub dataset")
    base = dict(preset.data.fields) if preset is not None else None
    columns = field_map(task, fields, base) if fields else base
    if data is not None and Path(data).is_dir():
        if preset is not None:
            return load_preset_rows(preset, folder=data, fields=columns)
        return load_split_folder(data, task, columns)
    if data is not None:
        return load_file(data, task, columns)
    if preset is None:
        raise ConfigError("give --preset NAME or --data FILE (a data file or a folder of split files)")
    return load_preset_rows(preset, hub=hub, fields=columns)


SPLIT_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "eval"),
}
"""The names published split files go by, per split: a file is a split's when its name (less
the extension and a hub shard suffix) is one of these, or ends or begins with one after
``_``, ``-`` or ``.`` (``spider_create_context_val.json``, ``train-00000-of-00001.parquet``)."""

DATA_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".parquet")
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")


def split_of(name: str) -> str | None:
    """The split (train, validation, test) a file name stands for, or None."""
    stem = _SHARD.sub("", Path(name).stem.lower())
    words = [w for w in re.split(r"[_.\- ]+", stem) if w]
    for word in (stem, words[-1] if words else "", words[0] if words else ""):
        for split, names in SPLIT_NAMES.items():
            if word in names:
                return split
    return None


def _canonical_split(name: str) -> str:
    """A preset's source split name (``validation``, ``dev``) as a key of ``SPLIT_NAMES``."""
    return split_of(name) or name.lower()


def load_split_folder(folder: str | Path, task: str, field_map: Mapping[str, str] | None,
                      splits: Mapping[str, str] | None = None) -> Loaded:
    """A folder of split files, as published: ``train.jsonl`` and ``validation.parquet``, the
    hub's ``data/train-00000-of-00001.parquet``, ``spider_create_context_val.json`` (a JSON
    list), ``train.csv``/``valid.csv``/``test.csv``. ``splits`` maps ftui's splits (train,
    val, test) to the source's names (a preset's); without it, every split found is used
    and a missing validation or test split is carved from train."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError("not a folder of split files", path=str(root))
    found: dict[str, list[Path]] = {}
    candidates = [p for sub in (root, root / "data") if sub.is_dir() for p in sorted(sub.iterdir())
                  if p.is_file() and p.suffix.lower() in DATA_SUFFIXES]
    for path in candidates:
        split = split_of(path.name)
        if split is not None:
            found.setdefault(split, []).append(path)
    if splits is None:
        splits = {ours: theirs for ours, theirs in (("train", "train"), ("val", "validation"),
                                                     ("test", "test")) if theirs in found}
        if "train" not in splits:
            splits = {"train": "train"}  # names what is missing below
    parts: dict[str, Loaded] = {}
    for ours, theirs in splits.items():
        canonical = _canonical_split(theirs)
        files = found.get(canonical, [])
        if not files:
            names = "/".join(SPLIT_NAMES.get(canonical, (theirs,)))
            seen = ", ".join(p.name for p in candidates[:8]) or "no data files"
            raise DataError(f"no file for split '{theirs}' (a .jsonl, .json, .csv or .parquet file named "
                            f"{names}, or ending in _{SPLIT_NAMES.get(canonical, (theirs,))[0]} and the like); "
                            f"found: {seen}", path=str(root))
        bases = sorted({_SHARD.sub("", p.stem) + p.suffix.lower() for p in files})
        if len(bases) > 1:
            raise DataError(f"{len(bases)} files could be split '{theirs}' ({', '.join(bases)}): keep one, "
                            "or move the others out of the folder", path=str(root))
        loads = [load_file(f, task, field_map) for f in files]
        for f, part in zip(files, loads):
            part.examples = [replace(ex, file=f.name) for ex in part.examples]
            part.issues = [replace(i, file=i.file or f.name) for i in part.issues]
        part = loads[0] if len(loads) == 1 else _merge(str(files[0].parent), loads[0].format,
                                                       {str(i): x for i, x in enumerate(loads)})
        part.named = None
        parts[ours] = part
    return _merge(str(root), "folder", parts)


def _merge(source: str, fmt: str, parts: Mapping[str, Loaded]) -> Loaded:
    """One Loaded from several sources; ``named`` keeps each part's examples under its key."""
    merged = Loaded(source=source, format=fmt, rows=sum(p.rows for p in parts.values()))
    merged.named = {}
    for key, part in parts.items():
        merged.examples += part.examples
        merged.issues += [replace(i, file=i.file or Path(part.source).name) for i in part.issues]
        merged.fields = merged.fields or part.fields
        merged.named[key] = list(part.examples)
    return merged


def held_out(loaded: Loaded, spec: SplitSpec) -> list[Example]:
    """The held-out rows of what ``load_source`` read: all of a file's rows, or a folder's (or
    hub dataset's) test split: its published test file, else carved by ``spec``."""
    if loaded.named is None:
        return list(loaded.examples)
    if "test" in loaded.named:
        return list(loaded.named["test"])
    return make_splits(loaded, spec)["test"]


def make_splits(loaded: Loaded, spec: SplitSpec) -> dict[str, list[Example]]:
    """train / val / test: the source's own splits when it has them, else a seeded random split.

    A split the source does not have is carved from its train split by ``spec``'s sizes.
    """
    if loaded.named is None:
        return split_examples(loaded.examples, spec)
    named = loaded.named
    train = list(named.get("train", []))
    carve = SplitSpec(seed=spec.seed, val=0 if "val" in named else spec.val, test=0 if "test" in named else spec.test)
    carved = split_examples(train, carve)
    return {"train": carved["train"], "val": list(named["val"]) if "val" in named else carved["val"],
            "test": list(named["test"]) if "test" in named else carved["test"]}


def load_hub(dataset_id: str, task: str, field_map: Mapping[str, str] | None, *,
             config: str = "", split: str = "train", preset: Preset | None = None) -> Loaded:
    """A hub dataset via ``datasets``; a one-line OfflineError when it cannot be fetched."""
    if preset is not None and not preset.data.sample:
        splits = preset.data.splits or {"train": preset.data.split}
        fallback = (f"Preset '{preset.name}' has no offline sample: give a local copy of the dataset, a folder "
                    f"holding its {' and '.join(sorted(set(splits.values())))} files (.jsonl, .json, .csv or "
                    f".parquet; names such as train.json or spider_create_context_val.json are recognised), "
                    f"as in `ftui train --preset {preset.name} --data FOLDER` (the same --data FOLDER works "
                    f"for `ftui data check` and `ftui study`), or use an offline preset such as 'sql'.")
    elif preset is not None:
        splits = preset.data.splits or {"train": preset.data.split}
        fallback = (f"Use the preset's offline sample (drop --hub), or a local copy of the dataset: "
                    f"`ftui train --preset {preset.name} --data FOLDER`, the folder holding its "
                    f"{' / '.join(dict.fromkeys(splits.values()))} files (.jsonl, .json, .csv or .parquet).")
    else:
        fallback = "Use a local copy of the data instead (--data FILE or FOLDER)."
    if not os.environ.get("HF_HUB_OFFLINE") and not hub_reachable():
        raise OfflineError(
            f"cannot load hub dataset '{dataset_id}': the hub ({_hub_host()}) cannot be reached "
            f"from this machine. {fallback}"
        )
    try:
        import datasets  # heavy: only when a hub dataset is asked for
    except ImportError as exc:  # pragma: no cover - installed with ftui
        raise OfflineError(f"the 'datasets' package is missing: {exc}") from None
    try:
        ds = datasets.load_dataset(dataset_id, config or None, split=split)
    except Exception as exc:  # network, auth and missing-dataset errors all land here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if os.environ.get("HF_HUB_OFFLINE"):
            raise OfflineError(f"cannot load hub dataset '{dataset_id}': HF_HUB_OFFLINE is set and it is not "
                               f"in the local cache, so the hub was not asked. {fallback}") from None
        raise OfflineError(f"cannot load hub dataset '{dataset_id}' ({first[:200]}). {fallback}") from None
    return _from_rows(f"hub:{dataset_id}", "hub", ((i + 1, dict(r)) for i, r in enumerate(ds)),
                      task, field_map)


def _hub_host() -> str:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return urllib.parse.urlparse(endpoint).hostname or "huggingface.co"


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the hub opens: a quick answer instead of a minute of retries."""
    try:
        with socket.create_connection((_hub_host(), 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def split_examples(examples: Sequence[Example], spec: SplitSpec) -> dict[str, list[Example]]:
    """Deterministic train/val/test split: a seeded shuffle, then test, val, train."""
    train_n, val_n, test_n = spec.sizes(len(examples))
    order = list(range(len(examples)))
    random.Random(spec.seed).shuffle(order)
    test = [examples[i] for i in order[:test_n]]
    val = [examples[i] for i in order[test_n:test_n + val_n]]
    train = [examples[i] for i in order[test_n + val_n:]]
    assert len(train) == train_n
    return {"train": train, "val": val, "test": test}


# -- JSON Lines -------------------------------------------------------------------------

def _load_jsonl(p: Path, task: str, field_map: Mapping[str, str] | None, need_reference: bool = True) -> Loaded:
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", path=str(p)) from None
    if p.suffix.lower() == ".json" and raw.lstrip().startswith(b"["):
        return _load_json_array(p, raw, task, field_map, need_reference)
    issues: list[Issue] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_ROW_BYTES:
            issues.append(Issue(number, f"{len(line):,} bytes long; rows over {MAX_ROW_BYTES:,} bytes are refused"))
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            issues.append(Issue(number, f"not UTF-8: byte 0x{line[exc.start]:02x} at column {exc.start + 1}"))
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            issues.append(Issue(number, f"not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        except RecursionError:
            issues.append(Issue(number, "JSON nested too deeply to read"))
            continue
        if not isinstance(obj, dict):
            issues.append(Issue(number, f"expected a JSON object, got {_kind(obj)}"))
            continue
        rows.append((number, obj))
    first = rows[0][1] if rows else {}
    if "messages" in first:
        fmt = "chat"
    elif "prompt" in first and ("completion" in first or not need_reference):
        fmt = "prompt-completion"
    else:
        fmt = "columns"
    loaded = _from_rows(str(p), fmt, iter(rows), task, field_map, need_reference)
    loaded.rows += len(issues)
    loaded.issues = sorted(issues + loaded.issues, key=lambda i: i.line)
    return loaded


def _load_json_array(p: Path, raw: bytes, task: str, field_map: Mapping[str, str] | None,
                     need_reference: bool = True) -> Loaded:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"not a valid JSON array: {exc}", path=str(p)) from None
    except RecursionError:
        raise DataError("JSON nested too deeply to read", path=str(p)) from None
    rows = ((i + 1, r) for i, r in enumerate(data))
    return _from_rows(str(p), "columns", rows, task, field_map, need_reference)


def _csv_rows(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 at byte {exc.start}", path=str(p), line=line) from None
    csv.field_size_limit(MAX_ROW_BYTES)
    reader = csv.DictReader(io.StringIO(text))
    try:
        for row in reader:
            # reader.line_num is the physical line just read; the header is line 1.
            extra = row.pop(None, None)
            if extra is not None:  # more cells than the header names
                yield reader.line_num, _Ragged(f"{len(reader.fieldnames or []) + len(extra)} cells, but the "
                                               f"header names {len(reader.fieldnames or [])}")
                continue
            yield reader.line_num, dict(row)
    except csv.Error as exc:
        raise DataError(f"not readable as CSV: {exc}", path=str(p), line=reader.line_num) from None


def _parquet_rows(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq  # heavy: only for Parquet files

    try:
        table = pq.read_table(p)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"not a readable Parquet file: {exc}", path=str(p)) from None
    for i, row in enumerate(table.to_pylist(), start=1):
        yield i, row


# -- rows -> examples -------------------------------------------------------------------

def _from_rows(source: str, fmt: str, rows: Iterator[tuple[int, Any]], task: str,
               field_map: Mapping[str, str] | None, need_reference: bool = True) -> Loaded:
    loaded = Loaded(source=source, format=fmt, rows=0)
    resolved: dict[str, str] | None = None
    rows = list(rows)
    objects = [r for _, r in rows if isinstance(r, dict)]
    if fmt not in ("chat", "prompt-completion") and objects and "messages" not in objects[0]:
        resolved = _resolve_fields(task, field_map, objects[0])
        absent = {name: column for name, column in resolved.items()
                  if not any(column in r for r in objects) and (need_reference or name != "reference")}
        if absent:
            # A header that names other columns (a published file's own names): one message
            # that says how to map them, not one per row.
            columns = sorted({c for r in objects[:50] for c in r})
            name, column = next(iter(absent.items()))
            loaded.rows, loaded.fields = len(rows), resolved
            loaded.issues.append(Issue(0, (
                f"no column {', '.join(repr(c) for c in absent.values())} for the task's "
                f"{', '.join(absent)} (the file has: {', '.join(columns[:12])}); name the column that "
                f"holds each with --field, e.g. --field {column}=COLUMN")))
            return loaded
        loaded.fields = resolved
    for number, row in rows:
        loaded.rows += 1
        if isinstance(row, _Ragged):
            loaded.issues.append(Issue(number, row.message))
            continue
        if not isinstance(row, dict):
            loaded.issues.append(Issue(number, f"expected an object, got {_kind(row)}"))
            continue
        if fmt == "chat" or "messages" in row:
            example, issues = _from_chat(number, row, need_reference)
        elif fmt == "prompt-completion":
            example, issues = _from_pair(number, row, need_reference)
        else:
            if resolved is None:
                resolved = _resolve_fields(task, field_map, row)
                loaded.fields = resolved
            example, issues = _from_columns(number, row, resolved, need_reference)
        loaded.issues.extend(issues)
        if example is not None:
            loaded.examples.append(example)
    return loaded


@dataclass(frozen=True)
class _Ragged:
    """A CSV record whose cell count does not match the header."""

    message: str


def _resolve_fields(task: str, field_map: Mapping[str, str] | None, row: Mapping[str, Any]) -> dict[str, str]:
    """Task field -> column: ``field_map`` where it says, else the first default column present."""
    resolved = {}
    for name, candidates in DEFAULT_FIELDS[task].items():
        resolved[name] = next((c for c in candidates if c in row), candidates[0])
    return {**resolved, **(field_map or {})}


def field_map(task: str, items: Sequence[str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``--field NAME=COLUMN`` items over ``base`` (a preset's task field -> column map).

    NAME is a task field (``reference``, ``question``, ``text``...) or a column name that
    ``base`` or the task's defaults read, as a published file's header might be renamed:
    ``--field meaning_representation=mr`` reads the preset's ``meaning_representation``
    (the reference) from the column ``mr``.
    """
    out = dict(base or {})
    fields = DEFAULT_FIELDS[task]
    for item in items:
        name, eq, column = (part.strip() for part in item.partition("="))
        if not eq or not name or not column:
            raise ConfigError(f"--field {item!r}: expected NAME=COLUMN, e.g. reference=answer")
        if name in fields:
            out[name] = column
            continue
        owner = next((f for f, c in (base or {}).items() if c == name), None)
        owner = owner or next((f for f, cands in fields.items() if name in cands), None)
        if owner is None:
            known = sorted(set(fields) | set((base or {}).values()))
            raise ConfigError(f"--field {name}: task '{task}' has no field or column of that name; "
                            f"known: {', '.join(known)}")
        out[owner] = column
    return out


def _from_columns(number: int, row: Mapping[str, Any], fields: Mapping[str, str],
                  need_reference: bool = True) -> tuple[Example | None, list[Issue]]:
    issues: list[Issue] = []
    values: dict[str, str] = {"reference": ""}
    for name, column in fields.items():
        if name == "reference" and not need_reference and row.get(column) is None:
            continue  # an unlabelled row
        if column not in row or row[column] is None:
            issues.append(Issue(number, "missing", column))
            continue
        value = row[column]
        if not isinstance(value, str):
            issues.append(Issue(number, f"must be text, got {_kind(value)} ({_short(value)})", column))
            continue
        values[name] = value
    if issues:
        return None, issues
    reference = values.pop("reference")
    if not reference.strip() and need_reference:
        return None, [Issue(number, "empty reference", fields["reference"])]
    return Example(fields=values, reference=reference, line=number), []


def _from_pair(number: int, row: Mapping[str, Any], need_reference: bool = True) -> tuple[Example | None, list[Issue]]:
    completion = row.get("completion")
    if completion is None and not need_reference:
        completion = ""  # an unlabelled row
    issues = [Issue(number, f"must be text, got {_kind(v)} ({_short(v)})", k)
              for k, v in (("prompt", row.get("prompt")), ("completion", completion)) if not isinstance(v, str)]
    if issues:
        return None, issues
    if not completion.strip() and need_reference:
        return None, [Issue(number, "empty reference", "completion")]
    messages = ({"role": "user", "content": row["prompt"]},)
    return Example(fields={"input": row["prompt"]}, reference=completion.strip(),
                   messages=messages, line=number), []


def _from_chat(number: int, row: Mapping[str, Any], need_reference: bool = True) -> tuple[Example | None, list[Issue]]:
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return None, [Issue(number, f"must be a non-empty list of turns, got {_kind(messages)}", "messages")]
    for i, turn in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(turn, dict):
            return None, [Issue(number, f"must be an object, got {_kind(turn)}", where)]
        if turn.get("role") not in CHAT_ROLES:
            return None, [Issue(number, f"role must be one of {', '.join(CHAT_ROLES)}, got {_short(turn.get('role'))}", f"{where}.role")]
        content = turn.get("content")
        if content is not None and not isinstance(content, (str, list)):
            return None, [Issue(number, f"must be text, got {_kind(content)} ({_short(content)})", f"{where}.content")]
    last = messages[-1]
    if last.get("role") != "assistant" and not need_reference:
        messages = [*messages, {"role": "assistant", "content": ""}]  # unlabelled: every turn is the prompt
        last = messages[-1]
    if last.get("role") != "assistant":
        return None, [Issue(number, "the last turn must be the assistant's answer (the reference)", f"messages[{len(messages) - 1}].role")]
    reference = last.get("content")
    if reference is None and not need_reference:
        reference = ""
    if not isinstance(reference, str) or (need_reference and not reference.strip()):
        return None, [Issue(number, "empty reference", f"messages[{len(messages) - 1}].content")]
    users = [m for m in messages[:-1] if m.get("role") == "user"]
    if not users:
        return None, [Issue(number, "no user turn before the answer", "messages")]
    last_user = users[-1].get("content")
    text = last_user if isinstance(last_user, str) else json.dumps(last_user, ensure_ascii=False)
    extra = {k: v for k, v in row.items() if k != "messages"}
    return Example(fields={"input": text}, reference=reference, messages=tuple(messages[:-1]),
                   line=number, extra=extra), []


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: Any, width: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."
