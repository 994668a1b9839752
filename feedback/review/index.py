"""The review index: a DuckDB database holding, for every record of a source, the columns the rules read
(:data:`feedback.rules.sql.SQL_COLUMNS`) and where the record is (``_file``, ``_line``, ``_pos``, ``_len``).

It is derived data and can be rebuilt at any time: each use first catches up on what changed in the
source (new files read, changed ones read again, vanished ones dropped; a local shard unchanged for a
day is final and never looked at again), so the queue and the stats are live, and a refresh costs the
new records, not the history. The queue and the stats are then SQL over it (:mod:`feedback.rules.sql`);
only the rows a page shows are read back whole, by locator.

For a local data dir the database is ``{data_dir}/.review-index.duckdb`` (hidden: never synced); any
number of processes may use it, one at a time (a process waits for another's lock). Where the data dir
cannot be written, and for records given as objects, it is kept in memory.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa
from loguru import logger

from feedback.review.sources import FileVersion, RecordSource, rule_schema
from feedback.rules.sql import KINDS, create_rule_views, rated_replies_sql

T = TypeVar("T")
R = TypeVar("R")
INDEX_NAME = ".review-index.duckdb"
"""The index's file name in a local data dir."""
INDEX_VERSION = 2
"""Bumped when the index's tables change: an index of another version is rebuilt."""
LOCATOR = pa.schema([("_pos", pa.int64()), ("_len", pa.int64())])
MEMORY_LIMIT = "256MB"
"""DuckDB's memory limit: the queue and stats stay well inside the app's RSS budget."""
LOCK_WAIT = 60.0
"""Seconds to wait for another process's lock on the index file."""


def bounded_map(function: Callable[[T], R], items: list[T], workers: int) -> Iterator[R]:
    """``map`` on ``workers`` threads, in order, with at most ``workers`` results waiting (memory holds a
    few files' rows, however many files there are)."""
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """``table`` visible to ``con``'s SQL as ``name`` for the duration of the block."""
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)


KEYS_PER_PASS = 200_000
"""Reply keys recomputed per pass when ``rated_replies_m`` catches up (a first build does all of them)."""
AFFECTING = ("turns", "ratings")
"""The kinds whose records change ``rated_replies_m`` (a reply's turn, its latest rating)."""


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], R]) -> R:
    con.execute("BEGIN")
    try:
        result = work()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


def _update_rated_replies(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute ``rated_replies_m`` (:func:`feedback.rules.sql.rated_replies_sql`) for the reply keys
    that new or removed turns and ratings name (``_affected``, written in the same transaction as those
    records, so a refresh cut short leaves them for the next one): the rules run over every record of
    those keys. Returns how many keys."""
    if not con.execute("SELECT count(*) FROM _affected").fetchall()[0][0]:
        return 0
    keys = "conversation_id, message_id"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _keys AS SELECT DISTINCT {keys} FROM _affected "
        "WHERE conversation_id IS NOT NULL AND message_id IS NOT NULL"
    )
    con.execute(
        "DELETE FROM rated_replies_m AS m USING _keys AS k "
        "WHERE m.conversation_id = k.conversation_id AND m.message_id = k.message_id"
    )
    count = con.execute("SELECT count(*) FROM _keys").fetchall()[0][0]
    buckets = max(1, -(-count // KEYS_PER_PASS))
    for bucket in range(buckets):  # a bounded share of the keys at a time: memory stays within the limit
        part = f"(SELECT * FROM _keys WHERE hash(conversation_id) % {buckets} = {bucket})"
        turns, ratings = (f"(SELECT * FROM {kind} SEMI JOIN {part} USING ({keys}))" for kind in AFFECTING)
        con.execute(f"INSERT INTO rated_replies_m {rated_replies_sql(turns, ratings)}")
    con.execute("DELETE FROM _affected")
    return count


def _table_schema(kind: str) -> pa.Schema:
    schema = rule_schema(kind)
    fields = [pa.field(f.name, pa.timestamp("us")) if f.name == "timestamp" else f for f in schema]
    return pa.schema([*fields, ("_file", pa.string()), ("_line", pa.int64()), *LOCATOR])


class ReviewIndex:
    """An incrementally updated DuckDB index of ``source`` (see the module docstring).

    Args:
        source: where the records are.
        path: the database file; None: in memory (rebuilt by each process).
        threads: DuckDB worker threads.
    """

    def __init__(self, source: RecordSource, path: str | os.PathLike[str] | None = None, *, threads: int = 2) -> None:
        self.source = source
        self.path = Path(path) if path is not None else None
        self.threads = threads
        self._lock = threading.RLock()
        self._memory: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def for_data_dir(cls, source: RecordSource, data_dir: str | os.PathLike[str]) -> ReviewIndex:
        """An index kept in ``data_dir`` (in memory when the folder cannot be written)."""
        folder = Path(data_dir)
        return cls(source, folder / INDEX_NAME if os.access(folder, os.W_OK) else None)

    @contextmanager
    def connect(self, *, refresh: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the index, caught up with the source (unless ``refresh`` is False), with the
        rule views created. One user at a time in this process."""
        with self._lock:
            con = self._open()
            try:
                if refresh:
                    self.refresh(con)
                create_rule_views(con, rated_replies="rated_replies_m")
                yield con
            finally:
                if con is not self._memory:
                    con.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self.path is None:
            if self._memory is None:
                self._memory = self._configure(duckdb.connect())
            return self._memory
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                return self._configure(duckdb.connect(str(self.path)))
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _configure(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute(f"SET threads = {self.threads}")
        con.execute("SET preserve_insertion_order = false")  # tables keep _file/_line: row order is not needed
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TABLE IF NOT EXISTS _index (version INTEGER)")
        version = con.execute("SELECT max(version) FROM _index").fetchall()[0][0]
        if version != INDEX_VERSION:
            for kind in KINDS:
                con.execute(f"DROP TABLE IF EXISTS {kind}")
            con.execute("DROP TABLE IF EXISTS _files")
            con.execute("DROP TABLE IF EXISTS rated_replies_m")
            con.execute("DROP TABLE IF EXISTS _affected")
            con.execute("DELETE FROM _index")
            con.execute("INSERT INTO _index VALUES (?)", [INDEX_VERSION])
        for kind in KINDS:
            with registered(con, "_empty", _table_schema(kind).empty_table()):
                con.execute(f"CREATE TABLE IF NOT EXISTS {kind} AS SELECT * FROM _empty")
        con.execute("CREATE TABLE IF NOT EXISTS _files (kind VARCHAR, path VARCHAR, version VARCHAR, final BOOLEAN)")
        con.execute("CREATE TABLE IF NOT EXISTS _affected (conversation_id VARCHAR, message_id VARCHAR)")
        con.execute(f"CREATE TABLE IF NOT EXISTS rated_replies_m AS SELECT * FROM ({rated_replies_sql()}) LIMIT 0")
        return con

    def refresh(self, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        """Catch up with the source: returns how many files of each kind were read."""
        started, read = time.perf_counter(), {}
        snapshot = getattr(self.source, "snapshot", None)
        if snapshot is not None:  # a remote source pins one state for the whole refresh
            snapshot()
        for kind in KINDS:  # one transaction per kind: a first build never holds every change at once
            read[kind] = _in_transaction(con, lambda kind=kind: self._refresh_kind(con, kind))
        _in_transaction(con, lambda: _update_rated_replies(con))
        if any(read.values()):
            logger.debug("review index: read {} in {:.2f} s", read, time.perf_counter() - started)
        return read

    def _refresh_kind(self, con: duckdb.DuckDBPyConnection, kind: str) -> int:
        known = {
            path: FileVersion(path, version, final)
            for path, version, final in con.execute(
                "SELECT path, version, final FROM _files WHERE kind = ?", [kind]
            ).fetchall()
        }
        listed = self.source.files(kind, known)
        now = {file.path: file for file in listed}
        stale = [path for path in known if path not in now or now[path].version != known[path].version]
        new = [file for file in listed if file.path not in known or file.version != known[file.path].version]
        newly_final = [
            file.path
            for file in listed
            if file.final
            and file.path in known
            and not known[file.path].final
            and file.version == known[file.path].version
        ]
        if not stale and not new and not newly_final:
            return 0
        affects = kind in AFFECTING
        if stale:
            with registered(con, "_gone", pa.table({"path": pa.array(stale, pa.string())})):
                if affects:
                    con.execute(
                        f"INSERT INTO _affected SELECT conversation_id, message_id FROM {kind} "
                        "WHERE _file IN (SELECT path FROM _gone)"
                    )
                con.execute(f"DELETE FROM {kind} WHERE _file IN (SELECT path FROM _gone)")
                con.execute("DELETE FROM _files WHERE kind = ? AND path IN (SELECT path FROM _gone)", [kind])
        if newly_final:
            with registered(con, "_done", pa.table({"path": pa.array(newly_final, pa.string())})):
                con.execute(
                    "UPDATE _files SET final = TRUE WHERE kind = ? AND path IN (SELECT path FROM _done)", [kind]
                )
        self._insert(con, kind, new, affects)
        return len(new)

    def _insert(self, con: duckdb.DuckDBPyConnection, kind: str, files: list[FileVersion], affects: bool) -> None:
        schema = _table_schema(kind)
        pending: list[pa.Table] = []
        rows = 0

        def flush() -> None:
            nonlocal pending, rows
            if pending:
                with registered(con, "_batch", pa.concat_tables(pending).select(schema.names).cast(schema)):
                    con.execute(f"INSERT INTO {kind} BY NAME SELECT * FROM _batch")
                    if affects:
                        con.execute("INSERT INTO _affected SELECT conversation_id, message_id FROM _batch")
            pending, rows = [], 0

        for table in bounded_map(
            lambda file: self.source.read(kind, file.path), files, getattr(self.source, "parallel", self.threads)
        ):
            pending.append(table)
            rows += table.num_rows
            if rows >= 200_000:
                flush()
        flush()
        if files:
            listing = pa.table(
                {
                    "kind": [kind] * len(files),
                    "path": [f.path for f in files],
                    "version": [f.version for f in files],
                    "final": [f.final for f in files],
                }
            )
            with registered(con, "_listing", listing):
                con.execute("INSERT INTO _files BY NAME SELECT * FROM _listing")
