"""The conversation index on disk: who owns each reply, and each conversation's current path.

Kept in SQLite (stdlib ``sqlite3``, WAL mode) in a hidden file of the data dir,
:data:`INDEX_FILE`, which the sync never uploads (it matches none of
:data:`feedback.hub.files.SYNC_PATTERNS`). The shards stay the source of truth: the index is
derived from them, updated as each turn is written, and rebuilt from them when it is missing,
unreadable or of another format (with a log line). Two tables:

- ``turns``: one row per turn: ``message_id`` -> ``conversation_id``, ``turn_index``, the
  record's timestamp (``time_us``, microseconds since the epoch), the turn's last user message
  (``user``, a :class:`~schemas.records.ChatMessage` as JSON) and its ``response``: what it takes
  to check a rating and to rebuild the prompt of the next turn. ``seq`` is the arrival order.
- ``shards``: each turn shard (and deletion shard) and how many of its bytes are indexed
  (``indexed_bytes``, always at the end of a complete line). A row of ``turns`` and the new
  ``indexed_bytes`` of its shard are written in one transaction, so a crash never leaves one
  without the other.
- ``deleted``: the conversations deleted (``schemas.records.Deletion``): their turns are removed
  from ``turns`` and never added again, so an id of theirs is unknown from then on, and
  :meth:`TurnIndex.is_deleted` says why. The file is written with SQLite's ``secure_delete`` on and
  its write-ahead log truncated after a deletion, so no free page or old log frame keeps the text.

At start, :meth:`TurnIndex.start_catch_up` (called by the app at once, else by the first lookup
that needs it) reads, on a background thread, only the bytes of each
shard past its ``indexed_bytes``: another replica's shards pulled in while the app was down, the
part of a shard a crash left unindexed, or everything on the first start. Until it is done,
lookups that might depend on those bytes wait for it (:meth:`TurnIndex.owner`, :meth:`TurnIndex.path`),
so an answer is never based on half the history; a lookup the index can answer for certain (a
reply written by this process, a conversation started by it) does not wait.

A conversation's *current path* is its latest turn at each index, in timestamp order (then
arrival order): a turn at index ``i`` replaces the turn at ``i`` and drops any later ones.

Turns the write gate kept out of the data dir (e.g. no consent) are never written to disk, so
they are not in the index file either: they live in memory (:class:`_MemoryTurns`, the most
recent :data:`MEMORY_CONVERSATIONS` conversations), so such a conversation goes on in this
process. So do turns the index file could not take (disk full, I/O error); their shard is read
again at the next start.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from loguru import logger
from pydantic import ValidationError

from feedback.store import FeedbackStore, LineSpan
from schemas.records import ChatMessage, Deletion, Turn

INDEX_FILE = ".conversations.sqlite3"
"""The index file in the data dir (hidden; SQLite adds ``-wal`` and ``-shm`` files beside it)."""
FORMAT = "2"
"""The index layout's version: a file of another version is rebuilt from the shards."""
MEMORY_CONVERSATIONS = 10_000
"""How many conversations of turns kept out of the data dir are remembered (least recently used go first)."""
_BATCH_ROWS = 5_000
T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL,
    turn_index INTEGER NOT NULL,
    time_us INTEGER NOT NULL,
    user TEXT NOT NULL,
    response TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns (conversation_id, time_us, seq);
CREATE TABLE IF NOT EXISTS shards (path TEXT PRIMARY KEY, indexed_bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deleted (conversation_id TEXT PRIMARY KEY);
"""
INDEXED_KINDS = ("deletions", "turns")
"""The record kinds the index reads, deletions first (a turn of a deleted conversation is never added)."""
_INSERT_TURN = (
    "INSERT OR IGNORE INTO turns (message_id, conversation_id, turn_index, time_us, user, response) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS (SELECT 1 FROM deleted WHERE conversation_id = ?2)"
)
_FORGET = (
    "INSERT OR IGNORE INTO deleted (conversation_id) VALUES (?1)",
    "DELETE FROM turns WHERE conversation_id = ?1",
)
# Bytes [0, start) of a shard are indexed when indexed_bytes >= start, so with [start, end) just
# indexed, [0, max(indexed_bytes, end)) are: the catch-up and live writes may race on a shard.
_ADVANCE_NEW = """
INSERT INTO shards (path, indexed_bytes) VALUES (?1, ?2)
ON CONFLICT (path) DO UPDATE SET indexed_bytes = MAX(indexed_bytes, excluded.indexed_bytes)
"""
_ADVANCE = "UPDATE shards SET indexed_bytes = MAX(indexed_bytes, ?3) WHERE path = ?1 AND indexed_bytes >= ?2"


def _advance(db: sqlite3.Connection, key: str, start: int, end: int) -> None:
    """Record that bytes ``[start, end)`` of shard ``key`` are indexed (see above)."""
    if start == 0:
        db.execute(_ADVANCE_NEW, (key, end))
    else:
        db.execute(_ADVANCE, (key, start, end))


@dataclass(frozen=True)
class TurnRef:
    """What the index keeps of a turn: enough to rebuild the prompt and to validate feedback."""

    message_id: str
    turn_index: int
    user: ChatMessage
    response: str


@dataclass(frozen=True)
class _Row:
    """A turn as the index stores it (``user`` as JSON)."""

    message_id: str
    conversation_id: str
    turn_index: int
    time_us: int
    user: str
    response: str

    @classmethod
    def of(cls, turn: Turn) -> _Row:
        user = next((m for m in reversed(turn.messages) if m.role == "user"), turn.messages[-1])
        micros = (turn.timestamp - _EPOCH) // _MICROSECOND
        return cls(
            turn.message_id, turn.conversation_id, turn.turn_index, micros, user.model_dump_json(), turn.response
        )

    def values(self) -> tuple[str, str, int, int, str, str]:
        return (self.message_id, self.conversation_id, self.turn_index, self.time_us, self.user, self.response)


class _MemoryTurns:
    """Turns known to this process only (kept out by the write gate, or not indexed because the
    index could not be written): the most recent ``capacity`` conversations."""

    def __init__(self, capacity: int = MEMORY_CONVERSATIONS) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[str, list[tuple[int, _Row]]] = OrderedDict()
        self._owner: dict[str, str] = {}
        self._seq = 1 << 62  # after every stored row at equal timestamps

    def add(self, row: _Row) -> None:
        rows = self._rows.setdefault(row.conversation_id, [])
        self._rows.move_to_end(row.conversation_id)
        self._seq += 1
        rows.append((self._seq, row))
        self._owner[row.message_id] = row.conversation_id
        while len(self._rows) > self.capacity:
            _, dropped = self._rows.popitem(last=False)
            for _, old in dropped:
                self._owner.pop(old.message_id, None)

    def owner(self, message_id: str) -> str | None:
        return self._owner.get(message_id)

    def rows(self, conversation_id: str) -> list[tuple[int, _Row]]:
        return list(self._rows.get(conversation_id, ()))

    def forget(self, conversation_id: str) -> None:
        for _, row in self._rows.pop(conversation_id, ()):
            self._owner.pop(row.message_id, None)


def current_path(rows: Iterable[tuple[int, int, str, int]]) -> list[tuple[str, int]]:
    """The current path from a conversation's turns ``(time_us, seq, message_id, turn_index)``
    sorted by time then arrival: a turn at index ``i`` replaces the one at ``i`` and drops the rest.

    Returns ``[(message_id, turn_index), ...]`` in path order.

    >>> current_path([(1, 1, "a", 0), (2, 2, "b", 1), (3, 3, "c", 1), (4, 4, "d", 0)])
    [('d', 0)]
    """
    path: list[tuple[str, int]] = []
    for *_, message_id, turn_index in rows:
        del path[turn_index:]
        path.append((message_id, turn_index))
    return path


class TurnIndex:
    """The on-disk index of a data dir's turns (see the module docstring).

    Args:
        store: the data dir's store (the shards it reads; the index file goes in its root).
        path: the index file (:attr:`file`); default ``store.root / INDEX_FILE``.

    Thread-safe: one connection for lookups and live writes, guarded by a lock, and one of its
    own for the catch-up thread (WAL mode lets the two read and write side by side).
    """

    def __init__(self, store: FeedbackStore, path: Path | None = None) -> None:
        self.store = store
        self.file = Path(path) if path is not None else store.root / INDEX_FILE
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._generation = 0  # bumped by a rebuild or close(): an older catch-up stops
        self._memory = _MemoryTurns()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._started = False
        self._temporary: Path | None = None
        try:
            self._db = self._open()
        except sqlite3.OperationalError as error:  # a read-only data dir: keep the index elsewhere for this run
            self._temporary = Path(tempfile.mkdtemp(prefix="feedback-index-"))
            logger.warning(
                "the conversation index cannot be kept in {} ({}): using {} for this run",
                self.file,
                error,
                self._temporary,
            )
            self.file = self._temporary / INDEX_FILE
            self._db = self._open()

    # -- opening -----------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        """The live connection, after the format check; a file that is unreadable or of another
        format is removed and started again (the catch-up then rebuilds it from the shards)."""
        try:
            return self._connect(check=True)
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as error:
            logger.warning(
                "the conversation index {} is unreadable ({}): rebuilding it from the shards", self.file, error
            )
        self._remove_files()
        return self._connect(check=True)

    def _connect(self, *, check: bool = False) -> sqlite3.Connection:
        db = sqlite3.connect(self.file, isolation_level=None, check_same_thread=False, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # the shards are the truth: a commit lost in a crash is read again
            db.execute("PRAGMA cache_size=-8000")  # KiB: at most 8 MB of page cache per connection
            db.execute(
                "PRAGMA secure_delete=ON"
            )  # a deleted conversation's text is overwritten, not left in free pages
            if check:
                self._check_format(db)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _check_format(db: sqlite3.Connection) -> None:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if row is None or row[0] != FORMAT:
                raise sqlite3.DatabaseError(f"format {row[0] if row else None!r}, expected {FORMAT!r}")
        elif tables:
            raise sqlite3.DatabaseError(f"unexpected tables {sorted(tables)}")
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?)", (FORMAT,))

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.file.with_name(self.file.name + suffix).unlink(missing_ok=True)

    # -- catching up -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once every shard's bytes present at start are indexed."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until :attr:`ready` (at most ``timeout`` seconds), starting the catch-up if it has
        not started; returns :attr:`ready`."""
        self._ensure_started()
        return self._ready.wait(timeout)

    def _wait(self) -> None:
        self._ensure_started()
        self._ready.wait()

    def _ensure_started(self) -> None:
        with self._start_lock:
            if not self._started:
                self._start_locked()

    def start_catch_up(self) -> None:
        """Index, on a daemon thread, the bytes of every turn shard past its indexed offset;
        :attr:`ready` is set when it is done (or failed: lookups then use what the index has).
        Without this call, the first lookup that has to wait for it starts it."""
        with self._start_lock:
            self._start_locked()

    def _start_locked(self) -> None:
        self._started = True
        self._ready.clear()
        generation = self._generation
        self._thread = threading.Thread(
            target=self._catch_up_thread, args=(generation,), name="turn-index-catch-up", daemon=True
        )
        self._thread.start()

    def _catch_up_thread(self, generation: int) -> None:
        try:
            self._catch_up(generation)
        except sqlite3.OperationalError as error:  # locked for a minute, disk full, I/O error
            logger.error("the conversation index {} could not catch up ({}): lookups use what it has", self.file, error)
        except sqlite3.DatabaseError as error:
            if generation == self._generation:
                self._rebuild(error)
            return
        except Exception:
            logger.exception("the conversation index {} could not catch up: lookups use what it has", self.file)
        if generation == self._generation:
            self._ready.set()

    def catch_up(self) -> int:
        """Index, now, the bytes of every turn shard past its indexed offset, then set :attr:`ready`.
        Returns how many turns were read.

        Raises:
            sqlite3.DatabaseError: when the index cannot be written or read.
        """
        generation = self._generation
        count = self._catch_up(generation)
        if generation == self._generation:
            self._ready.set()
        return count

    def _catch_up(self, generation: int) -> int:
        """Index the unindexed bytes shard by shard (each batch of rows commits with its shard's
        new offset) until done or ``generation`` is over; returns how many turns were read."""
        started = time.monotonic()
        db = self._connect()
        try:
            todo = self._unindexed(db)
            pending = sum(size - offset for *_, offset, size in todo)
            if pending > 64 * 1024 * 1024:
                logger.info(
                    "indexing {:.0f} MB of turns in {} shards (continuing an older conversation waits for it)",
                    pending / 1e6,
                    len(todo),
                )
            count = 0
            for path, key, offset, _ in todo:
                if generation != self._generation:
                    break
                count += self._index_shard(db, path, key, offset)
        finally:
            db.close()
        if todo:
            logger.info(
                "conversation index caught up: {} turns from {} shards in {:.1f} s",
                count,
                len(todo),
                time.monotonic() - started,
            )
        return count

    def _unindexed(self, db: sqlite3.Connection) -> list[tuple[Path, str, int, int]]:
        """``(path, key, indexed offset, size)`` of each deletion and turn shard with bytes not indexed
        yet (deletion shards first)."""
        done = dict(db.execute("SELECT path, indexed_bytes FROM shards"))
        todo = []
        for path, size in (entry for kind in INDEXED_KINDS for entry in self.store.shard_sizes(kind)):
            key = path.relative_to(self.store.root).as_posix()
            offset = done.get(key, 0)
            if offset > size:  # replaced by a shorter file: read it again (rows already known are kept)
                logger.warning("{} is shorter than the {} bytes indexed: indexing it again", path, offset)
                with _transaction(db):
                    db.execute("UPDATE shards SET indexed_bytes = 0 WHERE path = ?", (key,))
                offset = 0
            if size > offset:
                todo.append((path, key, offset, size))
        return todo

    def _index_shard(self, db: sqlite3.Connection, path: Path, key: str, offset: int) -> int:
        """Index the complete lines of one shard from ``offset``; returns how many turns were read."""
        if path.parent.name == "deletions":
            return self._index_deletions(db, path, key, offset)
        rows: list[tuple[str, str, int, int, str, str]] = []
        start = end = offset
        count = 0
        try:
            for end, line in self.store.read_lines_from(path, offset):
                row = _parse(line, path, end)
                if row is not None:
                    rows.append(row.values())
                if len(rows) >= _BATCH_ROWS:
                    _commit_rows(db, rows, key, start, end)
                    count, start, rows = count + len(rows), end, []
        except OSError as error:
            logger.warning("could not read {} to index it: {}", path, error.strerror or error)
        if end > start:
            _commit_rows(db, rows, key, start, end)
            count += len(rows)
        self._report_tail(path, end)
        return count

    def _index_deletions(self, db: sqlite3.Connection, path: Path, key: str, offset: int) -> int:
        """Apply the deletion records of one shard from ``offset`` (see :meth:`forget`); returns 0
        (no turn is read)."""
        ids, end = [], offset
        try:
            for end, line in self.store.read_lines_from(path, offset):
                try:
                    ids.append(Deletion.model_validate_json(line).conversation_id)
                except ValidationError as error:
                    logger.warning(
                        "skipping {} at byte {}: not a valid deletion ({})",
                        path,
                        end - len(line) - 1,
                        error.errors()[0]["msg"],
                    )
        except OSError as error:
            logger.warning("could not read {} to index it: {}", path, error.strerror or error)
        if end > offset:
            with self._lock if db is self._db else contextlib.nullcontext(), _transaction(db):
                for conversation_id in ids:
                    for statement in _FORGET:
                        db.execute(statement, (conversation_id,))
                _advance(db, key, offset, end)
        self._report_tail(path, end)
        if ids:
            self.forget_in_memory(*ids)
        return 0

    def _report_tail(self, path: Path, end: int) -> None:
        """Log a torn last line (a crash mid-write): it stays unindexed, and is looked at again next start."""
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size > end and not self.store.is_writing(path):
            logger.warning("skipping {} at byte {}: torn last line ({} bytes, no newline)", path, end, size - end)

    def _rebuild(self, error: Exception) -> None:
        """Start again from the shards after the index file turned out to be corrupt."""
        with self._lock:
            if self._generation < 0:  # closed
                return
            logger.error("the conversation index {} is corrupt ({}): rebuilding it from the shards", self.file, error)
            self._generation += 1
            self._ready.clear()
            self._db.close()
            self._remove_files()
            self._db = self._connect(check=True)
        self.start_catch_up()

    # -- writing -----------------------------------------------------------------------------

    def add(self, turn: Turn, span: LineSpan | None) -> None:
        """Index ``turn``, written to the data dir at ``span``; None: not written (the write
        gate kept it out), so it is remembered in memory only. A turn the index file cannot take
        (disk full, I/O error) is remembered in memory too, and logged; its shard is indexed again
        at the next start."""
        row = _Row.of(turn)
        if span is None:
            with self._lock:
                self._memory.add(row)
            return
        key = span.path.relative_to(self.store.root).as_posix()
        with self._lock:
            try:
                with _transaction(self._db):
                    self._db.execute(_INSERT_TURN, row.values())
                    _advance(self._db, key, span.start, span.end)
                return
            except sqlite3.DatabaseError as error:
                logger.bind(conversation_id=turn.conversation_id).error(
                    "turn {} could not be added to the conversation index {}: {}", turn.message_id, self.file, error
                )
                self._memory.add(row)

    def forget(self, conversation_id: str) -> None:
        """Mark a conversation deleted: its turns leave the index (file and memory), and are never
        added again, so its ids are unknown from now on. The text is overwritten in the file
        (``secure_delete``) and the write-ahead log is truncated.

        Raises:
            sqlite3.DatabaseError: when the index file cannot be written.
        """
        with self._lock:
            with _transaction(self._db):
                for statement in _FORGET:
                    self._db.execute(statement, (conversation_id,))
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.forget_in_memory(conversation_id)

    def forget_in_memory(self, *conversation_ids: str) -> None:
        """Forget conversations kept in memory only (their turns were kept out of the data dir)."""
        with self._lock:
            for conversation_id in conversation_ids:
                self._memory.forget(conversation_id)

    def shard_rewritten(self, path: Path, old_to_new: Callable[[int], int]) -> None:
        """A turn or deletion shard was rewritten (a deletion erased lines of it): its indexed offset
        ``o`` becomes ``old_to_new(o)``; a shard removed (``path`` missing) is forgotten.

        Raises:
            sqlite3.DatabaseError: when the index file cannot be written.
        """
        key = path.relative_to(self.store.root).as_posix()
        with self._lock, _transaction(self._db):
            row = self._db.execute("SELECT indexed_bytes FROM shards WHERE path = ?", (key,)).fetchone()
            if row is None:
                return
            if not path.exists():
                self._db.execute("DELETE FROM shards WHERE path = ?", (key,))
            else:
                self._db.execute("UPDATE shards SET indexed_bytes = ? WHERE path = ?", (old_to_new(row[0]), key))

    # -- reading -----------------------------------------------------------------------------

    def is_deleted(self, conversation_id: str, *, wait: bool = True) -> bool:
        """True when the conversation was deleted (waits for the catch-up unless ``wait`` is False).

        Raises:
            sqlite3.OperationalError: when the index file cannot be read (I/O error).
        """
        if wait and not self.ready:
            self._wait()
        return self._read(self._is_deleted, conversation_id)

    def on_disk(self, conversation_id: str, *, wait: bool = True) -> bool:
        """True when the index file holds a turn of the conversation (it was written to the data dir).

        Raises:
            sqlite3.OperationalError: when the index file cannot be read (I/O error).
        """
        if wait and not self.ready:
            self._wait()
        return self._read(self._on_disk, conversation_id)

    def _on_disk(self, conversation_id: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM turns WHERE conversation_id = ? LIMIT 1", (conversation_id,)).fetchone()
            is not None
        )

    def _is_deleted(self, conversation_id: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM deleted WHERE conversation_id = ?", (conversation_id,)).fetchone()
            is not None
        )

    def owner(self, message_id: str, *, wait: bool = True) -> str | None:
        """The conversation ``message_id`` is a reply of, or None for an unknown reply. An id not
        found yet waits for the catch-up (unless ``wait`` is False).

        Raises:
            sqlite3.OperationalError: when the index file cannot be read (I/O error).
        """
        found = self._read(self._owner, message_id)
        if found is None and wait and not self.ready:
            self._wait()
            found = self._read(self._owner, message_id)
        return found

    def _owner(self, message_id: str) -> str | None:
        row = self._db.execute("SELECT conversation_id FROM turns WHERE message_id = ?", (message_id,)).fetchone()
        return row[0] if row else self._memory.owner(message_id)

    def path(self, conversation_id: str, *, wait: bool = True) -> list[TurnRef]:
        """The current path of a conversation (empty for an unknown one), one :class:`TurnRef` per
        turn. Waits for the catch-up first (unless ``wait`` is False: the caller knows no shard
        holds turns of it that the index has not seen, e.g. a conversation this process started).

        Raises:
            sqlite3.OperationalError: when the index file cannot be read (I/O error).
        """
        if wait and not self.ready:
            self._wait()
        return self._read(self._path, conversation_id)

    def _path(self, conversation_id: str) -> list[TurnRef]:
        rows = self._db.execute(
            "SELECT time_us, seq, message_id, turn_index FROM turns WHERE conversation_id = ? ORDER BY time_us, seq",
            (conversation_id,),
        ).fetchall()
        memory = self._memory.rows(conversation_id)
        if memory:
            rows = sorted([*rows, *((r.time_us, seq, r.message_id, r.turn_index) for seq, r in memory)])
        chosen = current_path(rows)
        texts = {row.message_id: (row.user, row.response) for _, row in memory}
        wanted = [mid for mid, _ in chosen if mid not in texts]
        for first in range(0, len(wanted), 500):
            part = wanted[first : first + 500]
            query = f"SELECT message_id, user, response FROM turns WHERE message_id IN ({','.join('?' * len(part))})"
            texts.update((mid, (user, response)) for mid, user, response in self._db.execute(query, part))
        return [
            TurnRef(mid, index, ChatMessage.model_validate_json(texts[mid][0]), texts[mid][1]) for mid, index in chosen
        ]

    def _read(self, query: Callable[[str], T], key: str) -> T:
        """Run a lookup under the lock; a corrupt index file is rebuilt and the lookup run again."""
        try:
            with self._lock:
                return query(key)
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as error:
            self._rebuild(error)
        self._wait()
        with self._lock:
            return query(key)

    def __len__(self) -> int:
        """How many conversations the index knows (waits for the catch-up; scans the whole index)."""
        self._wait()
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(DISTINCT conversation_id) FROM turns").fetchone()
        return count

    def close(self) -> None:
        """Stop the catch-up (what it indexed so far is kept) and close the index file."""
        with self._lock:
            self._generation = -1
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            self._db.close()
        self._ready.set()  # nothing waits on a closed index
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)


def _commit_rows(
    db: sqlite3.Connection, rows: list[tuple[str, str, int, int, str, str]], key: str, start: int, end: int
) -> None:
    """Insert ``rows`` and record bytes ``[start, end)`` of shard ``key`` as indexed, in one transaction."""
    with _transaction(db):
        db.executemany(_INSERT_TURN, rows)
        _advance(db, key, start, end)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _parse(line: bytes, path: Path, end: int) -> _Row | None:
    """The index row of one shard line, or None (logged) for a line that is not a valid turn."""
    if not line.strip():
        return None
    try:
        return _Row.of(Turn.model_validate_json(line))
    except ValidationError as error:
        logger.warning(
            "skipping {} at byte {}: not a valid turn ({})", path, end - len(line) - 1, error.errors()[0]["msg"]
        )
        return None
