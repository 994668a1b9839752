"""The data dir: append-only JSONL shards, one folder per record kind, and uploaded files.

Layout (the same locally and in the Hub dataset repo)::

    {data_dir}/turns/20261124T071500123456Z-3f2a9c1b7d4e-0001.jsonl
    {data_dir}/ratings/...
    {data_dir}/flags/...
    {data_dir}/files/<sha256 hex><ext>

Each process writes its own shards, named with a random writer id, so replicas never write the
same file. A shard is closed and a new one started when it would pass ``shard_max_bytes`` or is
older than ``shard_max_age`` seconds: ``CommitScheduler`` uploads a changed file whole, so small
recent shards keep each commit proportional to the new records. A process never appends to a
shard it did not create, so a torn last line left by a crash stays in its old shard, where readers
report and skip it.

Writes happen under ``lock`` (pass ``CommitScheduler.lock`` so a scheduled scan never sees half a
write) and are flushed before ``append`` returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from loguru import logger
from pydantic import ValidationError

from schemas.records import RECORD_TYPES, Record

FILES_DIR = "files"


@dataclass
class _OpenShard:
    path: Path
    handle: IO[bytes]
    opened_at: float
    size: int = 0


@dataclass(frozen=True)
class BadLine:
    """A line of a shard that could not be read back: torn (no newline at the end), not JSON, or
    not a valid record. ``line`` is 1-based."""

    path: Path
    line: int
    reason: str


@dataclass(frozen=True)
class LineSpan:
    """Where one appended line sits in its shard: bytes ``start`` (inclusive) to ``end``
    (exclusive, just past its newline)."""

    path: Path
    start: int
    end: int


@dataclass
class ReadReport:
    """What a read skipped; filled in by :meth:`FeedbackStore.iter_records`."""

    bad_lines: list[BadLine] = field(default_factory=list)


class FeedbackStore:
    """Owns the files of one data dir: appends records to shards and reads them back.

    Args:
        data_dir: the folder; created if missing.
        lock: the lock every write holds (default: a new ``threading.Lock``); pass
            ``CommitScheduler.lock`` when syncing.
        shard_max_bytes: start a new shard rather than grow one past this size (bytes).
        shard_max_age: start a new shard when the open one is older than this (seconds).

    Thread-safe: any number of threads may call :meth:`append` at once.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        lock: threading.Lock | None = None,
        shard_max_bytes: int = 8 * 1024 * 1024,
        shard_max_age: float = 3600.0,
    ) -> None:
        if shard_max_bytes <= 0:
            raise ValueError(f"'shard_max_bytes' must be a positive number of bytes, not {shard_max_bytes!r}")
        if shard_max_age <= 0:
            raise ValueError(f"'shard_max_age' must be a positive number of seconds, not {shard_max_age!r}")
        self.root = Path(data_dir)
        self.lock = lock if lock is not None else threading.Lock()
        self.shard_max_bytes = shard_max_bytes
        self.shard_max_age = shard_max_age
        self.writer_id = uuid.uuid4().hex[:12]
        self._open: dict[str, _OpenShard] = {}
        self._sequence = 0
        self._stored: dict[tuple[str, int, int], str] = {}  # (source path, size, mtime) -> stored path
        for kind in RECORD_TYPES:
            (self.root / kind).mkdir(parents=True, exist_ok=True)

    # -- writing -------------------------------------------------------------------------

    def append(self, record: Record) -> Path:
        """Append ``record`` as one JSON line to its kind's current shard and flush it.

        Returns:
            The shard the line went to.
        Raises:
            OSError: when the disk refuses the write (disk full, read-only). Nothing partial is
                left behind: the shard is cut back to its last complete line and closed, and
                the next record starts a new one.
        """
        return self.append_span(record).path

    def append_span(self, record: Record) -> LineSpan:
        """:meth:`append`, returning where the line went: its shard and byte range.

        Raises:
            OSError: as :meth:`append`.
        """
        line = (record.model_dump_json() + "\n").encode("utf-8")
        with self.lock:
            shard = self._shard_for(record.kind, len(line))
            try:
                shard.handle.write(line)
                shard.handle.flush()
            except OSError:
                self._abandon(record.kind)
                raise
            start, shard.size = shard.size, shard.size + len(line)
            return LineSpan(shard.path, start, shard.size)

    def _abandon(self, kind: str) -> None:
        """Close a shard whose last write failed and cut off the part of the line that reached it."""
        shard = self._open.pop(kind)
        with contextlib.suppress(OSError):  # closing flushes the failed bytes again
            shard.handle.close()
        with contextlib.suppress(OSError):
            os.truncate(shard.path, shard.size)

    def rotate(self) -> None:
        """Close every open shard, so the next record of each kind starts a new one."""
        with self.lock:
            self.rotate_while_locked()

    def rotate_while_locked(self) -> None:
        """:meth:`rotate` for a caller that already holds :attr:`lock` (the sync's folder scan)."""
        for kind in list(self._open):
            self._close(kind)

    def close(self) -> None:
        """Close open shard files. The store can still be used: the next append opens a new shard."""
        self.rotate()

    def _shard_for(self, kind: str, incoming: int) -> _OpenShard:
        shard = self._open.get(kind)
        if shard is not None:
            too_big = shard.size > 0 and shard.size + incoming > self.shard_max_bytes
            too_old = time.monotonic() - shard.opened_at > self.shard_max_age
            if too_big or too_old:
                self._close(kind)
                shard = None
        if shard is None:
            shard = self._open[kind] = self._new_shard(kind)
        return shard

    def _new_shard(self, kind: str) -> _OpenShard:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._sequence += 1
        path = self.root / kind / f"{stamp}-{self.writer_id}-{self._sequence:04d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "xb")  # noqa: SIM115 - kept open across appends, closed in _close
        return _OpenShard(path=path, handle=handle, opened_at=time.monotonic())

    def _close(self, kind: str) -> None:
        shard = self._open.pop(kind, None)
        if shard is not None:
            shard.handle.close()

    def store_file(self, source: str | os.PathLike[str]) -> str:
        """Copy an uploaded file into ``files/`` under its content hash, once (a source already
        stored, unchanged since, is not read again).

        Returns:
            The path relative to the data dir, ``files/<sha256 hex><suffix>`` (suffix lower-cased).
        Raises:
            FileNotFoundError: when ``source`` does not exist.
        """
        source = Path(source)
        stat = source.stat()
        seen = (str(source.resolve()), stat.st_size, stat.st_mtime_ns)
        if seen in self._stored:  # the same upload again (a history is re-sent every turn): no re-hash
            return self._stored[seen]
        digest = hashlib.sha256()
        with open(source, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        relative = f"{FILES_DIR}/{digest.hexdigest()}{source.suffix.lower()[:16]}"
        target = self.root / relative
        if target.is_symlink() or not target.is_file():  # a symlink planted here is replaced, never followed
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = tempfile.NamedTemporaryFile(dir=target.parent, delete=False, prefix=".tmp-")  # noqa: SIM115
            try:
                with tmp, open(source, "rb") as handle:
                    shutil.copyfileobj(handle, tmp)
                os.replace(tmp.name, target)
            except BaseException:
                Path(tmp.name).unlink(missing_ok=True)  # disk full mid-copy: no .tmp-* left behind
                raise
        self._stored[seen] = relative
        return relative

    def forget_file(self, relative: str) -> None:
        """Remove an uploaded file (``files/<sha256><ext>``, as :meth:`store_file` returns it) and forget
        that it was stored, so the same upload later is copied again.

        Raises:
            ValueError: for a path outside ``files/``.
        """
        name = relative.removeprefix(f"{FILES_DIR}/")
        if not relative.startswith(f"{FILES_DIR}/") or not name or "/" in name or name.startswith("."):
            raise ValueError(f"not an uploaded file's path: {relative!r}")
        with self.lock:
            for seen in [key for key, value in self._stored.items() if value == relative]:
                del self._stored[seen]
            (self.root / relative).unlink(missing_ok=True)

    def check_writable(self, probe_bytes: int = 64 * 1024) -> None:
        """Write, flush to disk and remove a probe file of ``probe_bytes`` in the data dir.

        Raises:
            OSError: when the data dir cannot take it (read-only, full, missing permissions).
        """
        probe = self.root / f".write-probe-{self.writer_id}"
        try:
            with open(probe, "wb") as handle:
                handle.write(b"\0" * probe_bytes)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            probe.unlink(missing_ok=True)

    # -- reading -------------------------------------------------------------------------

    def shards(self, kind: str) -> list[Path]:
        """The shard files of one record kind, sorted by name (which starts with their UTC start time,
        so this is roughly time order; exact order across writers comes from record timestamps)."""
        if kind not in RECORD_TYPES:
            raise ValueError(f"unknown record kind {kind!r}; expected one of {sorted(RECORD_TYPES)}")
        return sorted((self.root / kind).glob("*.jsonl"))

    def shard_sizes(self, kind: str) -> list[tuple[Path, int]]:
        """``(path, size in bytes)`` of each shard of one record kind, in :meth:`shards` order
        (a shard removed while listing is left out)."""
        sizes = []
        for path in self.shards(kind):
            with contextlib.suppress(FileNotFoundError):
                sizes.append((path, path.stat().st_size))
        return sizes

    def is_writing(self, path: Path) -> bool:
        """True while this store appends to ``path`` (its last line may be half written)."""
        return any(shard.path == path for shard in list(self._open.values()))

    def read_lines_from(self, path: Path, offset: int, *, block: int = 4 * 1024 * 1024) -> Iterator[tuple[int, bytes]]:
        """The complete lines of a shard from byte ``offset`` on, as ``(end, line)``: ``end`` is the
        offset just past the line's newline, ``line`` its bytes without the newline. A last line
        with no newline (torn by a crash, or being written) is not yielded. Memory: one ``block``
        (bytes) plus the longest line.

        Raises:
            OSError: when the shard cannot be read (e.g. removed meanwhile).
        """
        with open(path, "rb") as handle:
            handle.seek(offset)
            pending, start = b"", offset
            while chunk := handle.read(block):
                data = pending + chunk
                lines = data.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    start += len(line) + 1
                    yield start, line

    def iter_records(self, kind: str, report: ReadReport | None = None) -> Iterator[Record]:
        """Every valid record of one kind, shard by shard, in file order.

        Lines that cannot be read (a torn last line from a crash, bad JSON, a record that fails
        validation) are skipped, logged once each as a warning, and added to ``report``.
        Shards this store is writing to right now are read up to their last complete line.
        """
        model = RECORD_TYPES[kind]
        own = {shard.path for shard in self._open.values()}
        for path in self.shards(kind):
            for number, payload in _read_lines(path, report, tolerate_tail=path in own):
                try:
                    yield model.model_validate(payload)
                except ValidationError as error:
                    _report(report, BadLine(path, number, f"invalid {kind} record: {error.errors()[0]['msg']}"))


def _read_lines(path: Path, report: ReadReport | None, *, tolerate_tail: bool) -> Iterator[tuple[int, dict]]:
    with open(path, "rb") as handle:
        data = handle.read()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            payload = json.loads(raw)
        except ValueError:
            _report(report, BadLine(path, number, "not valid JSON"))
            continue
        if isinstance(payload, dict):
            yield number, payload
        else:
            _report(report, BadLine(path, number, "not a JSON object"))
    if tail.strip() and not tolerate_tail:
        _report(report, BadLine(path, len(lines) + 1, f"torn last line ({len(tail)} bytes, no newline)"))


def _report(report: ReadReport | None, bad: BadLine) -> None:
    logger.warning("skipping {}:{}: {}", bad.path, bad.line, bad.reason)
    if report is not None:
        report.bad_lines.append(bad)
