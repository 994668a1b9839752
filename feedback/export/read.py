"""Reading record shards into Arrow tables: explicit schema, only the columns asked for, line-safe.

A shard is parsed whole by ``pyarrow.json`` (multi-threaded C++, no per-record Python). When that
fails (a line that is not JSON, not an object, or has a value of the wrong type) the shard is
parsed again in halves, down to the bad lines, which alone are skipped. A torn last line (no newline: a
crash mid-write) is cut off before parsing. Every skipped line is logged and counted.

Records given as Python objects (pydantic records or JSON-like dicts) go through the same parser
after :func:`records_to_jsonl`, so a notebook's records and a data dir's files mean the same.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pyarrow as pa
import pyarrow.json as paj
from loguru import logger
from pydantic import BaseModel
from tqdm.auto import tqdm

from feedback.features import record_schema

T = TypeVar("T")
BLOCK_SIZE = 4 << 20
"""pyarrow.json block size in bytes: blocks of a shard are parsed in parallel (a longer line: one block)."""


@dataclass
class ReadCounts:
    """What reading one record kind met: shard files, bytes, records parsed and lines skipped."""

    files: int = 0
    bytes: int = 0
    records: int = 0
    bad_lines: int = 0

    def add(self, other: ReadCounts) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.records += other.records
        self.bad_lines += other.bad_lines


def parse_jsonl(data: bytes, schema: pa.Schema, *, origin: str = "<records>") -> tuple[pa.Table, ReadCounts]:
    """Parse JSON lines into a table of ``schema`` (other fields ignored, missing ones null).

    Args:
        data: UTF-8 JSON lines, one object per line.
        schema: the columns to keep and their types.
        origin: the shard's name, for log lines.

    Returns:
        The table and its counts (``files`` 0; the caller counts files).
    """
    counts = ReadCounts(bytes=len(data))
    cut = data.rfind(b"\n") + 1
    if data[cut:].strip():
        logger.warning("skipping {}: torn last line ({} bytes, no newline)", origin, len(data) - cut)
        counts.bad_lines += 1
    if cut == 0:
        return schema.empty_table(), counts
    body = pa.py_buffer(data).slice(0, cut)  # no copy
    try:
        table = _parse(body, schema, BLOCK_SIZE)
    except pa.ArrowInvalid:
        table, bad = _parse_skipping_bad_lines(data[:cut], schema, origin)
        counts.bad_lines += bad
    counts.records = table.num_rows
    return table, counts


def _parse(data: bytes | pa.Buffer, schema: pa.Schema, block_size: int) -> pa.Table:
    try:
        return paj.read_json(
            pa.BufferReader(data),
            read_options=paj.ReadOptions(block_size=block_size),
            parse_options=paj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except pa.ArrowInvalid:
        if block_size > len(data):
            raise
        return _parse(data, schema, len(data) + 1)  # a line longer than a block


def _parse_skipping_bad_lines(data: bytes, schema: pa.Schema, origin: str) -> tuple[pa.Table, int]:
    """Parse JSON lines some of which are bad: runs of lines that parse together are taken whole, a run that
    does not is halved, down to the single bad lines, which are skipped and logged (with their line numbers).
    A shard with a few bad lines costs a few dozen parses, not one per line. Returns the table (in line order)
    and the number of bad lines."""
    lines = data.split(b"\n")
    tables: list[pa.Table] = []
    bad = 0

    def parse_run(start: int, stop: int) -> None:
        nonlocal bad
        run = b"\n".join(line for line in lines[start:stop] if line.strip())
        if not run:
            return
        try:
            tables.append(_parse(run, schema, len(run) + 1))
            return
        except pa.ArrowInvalid as error:
            if stop - start == 1:
                logger.warning("skipping {}:{}: {}", origin, start + 1, str(error).splitlines()[0])
                bad += 1
                return
        middle = (start + stop) // 2
        parse_run(start, middle)
        parse_run(middle, stop)

    parse_run(0, len(lines))
    return (pa.concat_tables(tables) if tables else schema.empty_table()), bad


def read_shard(path: Path, schema: pa.Schema) -> tuple[pa.Table, ReadCounts]:
    """One shard file as a table of ``schema``, bad lines skipped (see :func:`parse_jsonl`)."""
    table, counts = parse_jsonl(path.read_bytes(), schema, origin=str(path))
    counts.files = 1
    return table, counts


def shard_paths(data_dir: Path, kind: str) -> list[Path]:
    """The ``*.jsonl`` shards of one record kind, sorted by name (a missing folder: none)."""
    return sorted((Path(data_dir) / kind).glob("*.jsonl"))


def read_kind(
    data_dir: Path,
    kind: str,
    columns: list[str],
    transform: Callable[[pa.Table], T],
    consume: Callable[[T], None],
    *,
    progress: bool = False,
) -> ReadCounts:
    """Read every shard of ``kind``, two at a time: ``transform`` each table, ``consume`` the results.

    ``transform`` runs on each shard's table in a reading thread (it must be thread-safe);
    ``consume`` runs in the calling thread, in shard order. Keeping only what ``transform``
    returns holds memory to the part of the data an export needs.

    Returns:
        The summed counts.
    """
    schema = record_schema(kind, columns)
    from feedback.hub.remote import record_files_for  # a folder standing for a Hub repo: read it in place

    remote = record_files_for(data_dir)
    paths = remote.paths(kind) if remote else shard_paths(data_dir, kind)

    def read(path: Path) -> tuple[T, ReadCounts]:
        table, counts = remote.read(path, schema) if remote else read_shard(path, schema)
        return transform(table), counts

    total = ReadCounts()
    with tqdm(
        total=sum(remote.size(p) if remote else p.stat().st_size for p in paths),
        unit="B",
        unit_scale=True,
        desc=f"reading {kind}",
        disable=not progress,
    ) as bar:
        for result, counts in _ordered_map(read, paths, workers=2):
            total.add(counts)
            consume(result)
            bar.update(counts.bytes)
    return total


def _ordered_map(function: Callable[[Any], T], items: Iterable[Any], *, workers: int) -> Iterator[T]:
    """``map`` on a thread pool, in order, with at most ``2 * workers`` results waiting."""
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def records_to_jsonl(records: Iterable[BaseModel | dict[str, Any]]) -> bytes:
    """JSON lines of records: pydantic records as they are stored, dicts as JSON (datetimes ISO 8601)."""
    lines = []
    for record in records:
        if isinstance(record, BaseModel):
            lines.append(record.model_dump_json().encode())
        else:
            lines.append(orjson.dumps(record, default=_jsonable, option=orjson.OPT_UTC_Z))
    return b"".join(line + b"\n" for line in lines)


def _jsonable(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
