"""Where the review index reads records from: the files of a source, each read into the columns the rules
need plus a locator, and whole records fetched back by locator for the rows a page shows.

A source lists its files per record kind as :class:`FileVersion` (a path that sorts in file order and a
version that changes when the file does); :meth:`RecordSource.read` gives one file's rows as an Arrow
table with :data:`feedback.rules.sql.SQL_COLUMNS` (every record kind, ``deletions`` too), ``_line`` (position
in the file), and ``_pos``/``_len``
(the byte range of a JSON line, or the row number of a Parquet row and 0); :meth:`RecordSource.fetch`
turns ``(_file, _pos, _len)`` locators back into ``schemas.records`` objects.

- :class:`ShardSource`: a local data dir's JSONL shards (the live app's, or any folder).
- :class:`RecordsSource`: records given as objects (tests, notebooks).
- :class:`CombinedSource`: several sources as one (a dataset repo plus the reviews written locally).
- ``feedback.hub.remote.HubSource``: a dataset repo read through ``HfFileSystem``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as paj
from loguru import logger
from pydantic import ValidationError

from feedback.features import record_schema
from feedback.rules.sql import KINDS, SQL_COLUMNS, records_tables, with_order
from schemas.records import RECORD_TYPES, Record

FINAL_AGE = 24 * 3600.0
"""A local shard unchanged for this long (seconds) is final: a writer never appends to a shard that old
(``FeedbackStore`` starts a new one after ``shard_max_age``), so it is not looked at again."""


@dataclass(frozen=True)
class FileVersion:
    """One file of a source: ``path`` (sorts in file order), ``version`` (changes with its content),
    ``final`` (it will never change: no need to look at it again)."""

    path: str
    version: str
    final: bool = False


class RecordSource(Protocol):
    """What the review index reads (see the module docstring)."""

    def files(self, kind: str, known: dict[str, FileVersion]) -> list[FileVersion]:
        """Every file of ``kind`` now; ``known`` are the files read before (final ones need no look)."""

    def read(self, kind: str, path: str) -> pa.Table:
        """The rows of one file: the rule columns, ``_file``, ``_line``, ``_pos``, ``_len``."""

    def fetch(self, kind: str, locators: Sequence[tuple[str, int, int]]) -> list[Record | None]:
        """The records at ``(_file, _pos, _len)`` locators, in that order (None: no longer readable)."""


def rule_schema(kind: str) -> pa.Schema:
    """The Arrow schema of the rule columns of ``kind`` as stored (tz-aware timestamps)."""
    return record_schema(kind, list(SQL_COLUMNS[kind]))


def _located(table: pa.Table, path: str, lines: Iterable[int], pos: Iterable[int], length: Iterable[int]) -> pa.Table:
    table = with_order(table, path, lines)
    return table.append_column("_pos", pa.array(list(pos), pa.int64())).append_column(
        "_len", pa.array(list(length), pa.int64())
    )


def jsonl_rows(data: bytes, kind: str, path: str) -> pa.Table:
    """The rule columns of JSON lines ``data`` with each line's byte range; bad lines are skipped (logged),
    a torn last line (no newline) is left out."""
    schema = rule_schema(kind)
    cut = data.rfind(b"\n") + 1
    ends = np.flatnonzero(np.frombuffer(data, np.uint8, count=cut) == 10)
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    filled = ends > starts
    starts, ends = starts[filled], ends[filled]
    table = None
    if cut:
        try:
            table = paj.read_json(
                pa.BufferReader(pa.py_buffer(data).slice(0, cut)),
                read_options=paj.ReadOptions(block_size=max(1 << 20, cut + 1)),
                parse_options=paj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            )
        except pa.ArrowInvalid:
            table = None
    if table is not None and table.num_rows == len(starts):
        return _located(table.select(schema.names), path, range(len(starts)), starts, ends - starts)
    return _line_by_line(data, starts, ends, schema, path)


def _line_by_line(data: bytes, starts: np.ndarray, ends: np.ndarray, schema: pa.Schema, path: str) -> pa.Table:
    tables, kept = [], []
    for line, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        raw = data[start:end]
        if not raw.strip():
            continue
        try:
            one = paj.read_json(
                pa.BufferReader(raw + b"\n"),
                parse_options=paj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            )
        except pa.ArrowInvalid as error:
            logger.warning("skipping {}:{}: {}", path, line + 1, str(error).splitlines()[0])
            continue
        if one.num_rows == 1:
            tables.append(one.select(schema.names))
            kept.append((line, start, end - start))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return _located(table, path, (k[0] for k in kept), (k[1] for k in kept), (k[2] for k in kept))


def parse_record(kind: str, raw: bytes | dict, origin: str) -> Record | None:
    """One record of ``kind`` from a JSON line or a row dict; None (logged) when it is not valid.

    A row of a Parquet file has every column, null where its JSON line had no key (a field with a
    default, e.g. ``params.inputs`` of an earlier record): nulls inside nested values are left out
    when the row is not valid as it is.
    """
    try:
        payload = orjson.loads(raw) if isinstance(raw, bytes) else raw
        try:
            return RECORD_TYPES[kind].model_validate(payload)
        except ValidationError:
            if not isinstance(payload, dict):
                raise
            return RECORD_TYPES[kind].model_validate({k: _without_nulls(v) for k, v in payload.items()})
    except (ValueError, ValidationError) as error:
        logger.warning("skipping a {} record in {}: {}", kind, origin, str(error).splitlines()[0])
        return None


def _without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


class ShardSource:
    """The JSONL shards of a local data dir (``{data_dir}/{kind}/*.jsonl``), paths relative to it.

    Args:
        data_dir: the folder.
        prefix: put before every path (to tell this source's files from another's in a combined one).
    """

    def __init__(self, data_dir: str | os.PathLike[str], prefix: str = "") -> None:
        self.root = Path(data_dir)
        self.prefix = prefix

    def files(self, kind: str, known: dict[str, FileVersion]) -> list[FileVersion]:
        """Every shard of ``kind``; a known final shard is not looked at again."""
        folder = self.root / kind
        if not folder.is_dir():
            return []
        found, now = [], time.time()
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.name.endswith(".jsonl") or entry.name.startswith("."):
                    continue
                path = f"{self.prefix}{kind}/{entry.name}"
                before = known.get(path)
                if before is not None and before.final:
                    found.append(before)
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                found.append(FileVersion(path, f"{stat.st_size}:{stat.st_mtime_ns}", now - stat.st_mtime > FINAL_AGE))
        return sorted(found, key=lambda f: f.path)

    def _local(self, path: str) -> Path:
        return self.root / path[len(self.prefix) :]

    def read(self, kind: str, path: str) -> pa.Table:
        """The rows of one shard (see :func:`jsonl_rows`)."""
        return jsonl_rows(self._local(path).read_bytes(), kind, path)

    def fetch(self, kind: str, locators: Sequence[tuple[str, int, int]]) -> list[Record | None]:
        """The records at ``(_file, _pos, _len)``: one read of each line's bytes."""
        out: list[Record | None] = []
        for path, pos, length in locators:
            try:
                with open(self._local(path), "rb") as handle:
                    handle.seek(pos)
                    raw = handle.read(length)
            except OSError as error:
                logger.warning("cannot read {}: {}", path, error)
                out.append(None)
                continue
            out.append(parse_record(kind, raw, path))
        return out


class RecordsSource:
    """Records given as objects, as one file per kind (``<kind>``): file order is the order given."""

    def __init__(self, records: Iterable[Record]) -> None:
        self.records: dict[str, list[Record]] = {kind: [] for kind in KINDS}
        for record in records:
            if record.kind in self.records:
                self.records[record.kind].append(record)
        self.tables = records_tables([r for kind in KINDS for r in self.records[kind]])

    def files(self, kind: str, known: dict[str, FileVersion]) -> list[FileVersion]:
        """One file per kind, final."""
        return [FileVersion(kind, str(len(self.records[kind])), True)]

    def read(self, kind: str, path: str) -> pa.Table:
        """The records of ``kind``; ``_pos`` is the position in the list."""
        table = self.tables[kind].drop_columns(["_file", "_line"])
        count = table.num_rows
        return _located(table, path, range(count), range(count), [0] * count)

    def fetch(self, kind: str, locators: Sequence[tuple[str, int, int]]) -> list[Record | None]:
        """The records by position."""
        return [self.records[kind][pos] for _, pos, _ in locators]


class CombinedSource:
    """Several sources as one; their paths must not collide (give each a ``prefix``)."""

    def __init__(self, sources: Sequence[RecordSource]) -> None:
        self.sources = list(sources)
        self._owner: dict[str, RecordSource] = {}

    def files(self, kind: str, known: dict[str, FileVersion]) -> list[FileVersion]:
        """The files of every source, in source order then path order."""
        out = []
        for source in self.sources:
            for file in source.files(kind, known):
                self._owner[file.path] = source
                out.append(file)
        return out

    def read(self, kind: str, path: str) -> pa.Table:
        """The rows of one file, from the source that listed it."""
        return self._owner[path].read(kind, path)

    @property
    def parallel(self) -> int:
        """Files read at once: as many as the most parallel source reads."""
        return max(getattr(source, "parallel", 2) for source in self.sources)

    def snapshot(self) -> None:
        """Pin every remote source's current state (see ``feedback.hub.remote.HubSource``)."""
        for source in self.sources:
            if hasattr(source, "snapshot"):
                source.snapshot()

    def fetch(self, kind: str, locators: Sequence[tuple[str, int, int]]) -> list[Record | None]:
        """The records, each from the source of its file (one call per source)."""
        out: list[Record | None] = [None] * len(locators)
        for source in self.sources:
            mine = [n for n, locator in enumerate(locators) if self._owner.get(locator[0]) is source]
            if mine:
                for n, record in zip(mine, source.fetch(kind, [locators[n] for n in mine]), strict=True):
                    out[n] = record
        return out
