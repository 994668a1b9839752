"""Deleting a conversation: the deletion record at once, then its erasure from the data dir (and the repo).

:meth:`Eraser.forget` is what the page's "Forget this conversation" button, the API's ``/forget``, the
reviewer's delete action and ``python -m feedback delete`` call. In order:

1. A :class:`~schemas.records.Deletion` record is appended through the write gate. Every reader
   (exports, review queue, stats: :mod:`feedback.rules`) ignores the conversation from that record on.
2. The conversation index forgets it (:meth:`feedback.index.TurnIndex.forget`): continuing it by id is
   refused, and a rating or flag of one of its replies names an unknown reply. The recorder keeps any
   later record of it out of the data dir (a reply that was still streaming, a replica that had not
   heard).
3. On a background worker, :func:`erase_local` rewrites every shard holding it without its lines and
   removes its uploaded files that no other conversation uses; with a Hub sync, the sync does that with
   its pushes paused and then rewrites the repo (:meth:`feedback.hub.sync.HubSync.erase`).

An erasure cut short (a crash, a stop) is done again at the next start: the worker compares the deletion
records with the ledger of erasures done (``.erased`` in the data dir, hidden, never synced).

Shards are rewritten in place, so ``python -m feedback delete`` refuses a data dir an app is serving (it
holds the dir's in-use lock, :func:`serving`): such a dir deletes through its app (the page, ``/forget``,
the review page) or through the repo.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from feedback.errors import FeedbackError
from feedback.store import FILES_DIR, FeedbackStore
from schemas.records import RECORD_TYPES, Deletion, Requester, is_valid_id

if TYPE_CHECKING:
    from feedback.hub.sync import HubSync
    from feedback.index import TurnIndex
    from feedback.recorder import FeedbackRecorder

ERASED_LEDGER = ".erased"
"""The data dir's list of conversations erased from it (one id a line; hidden, never synced)."""
IN_USE_FILE = ".in-use"
"""A running app holds a shared lock on this file of its data dir (:func:`serving`); the ``delete``
command takes it exclusively (:func:`exclusive_use`), so it never rewrites shards an app appends to."""


class DataDirInUse(FeedbackError):
    """A running app serves the data dir: shards cannot be rewritten beside it."""


_SERVED: set[Path] = set()
"""The data dirs this process serves (inside :func:`serving`)."""


@contextlib.contextmanager
def serving(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's in-use lock (shared: several apps may serve one dir) while the block runs.
    Released when the process ends, however it ends (``flock``)."""
    root = Path(data_dir).resolve()
    with _locked(data_dir, fcntl.LOCK_SH):
        _SERVED.add(root)
        try:
            yield
        finally:
            _SERVED.discard(root)


def _may_rewrite(data_dir: Path) -> contextlib.AbstractContextManager[None]:
    """The lock an erasure of ``data_dir`` needs: none when this process serves it (its own shards),
    else the exclusive in-use lock (raises :class:`DataDirInUse` when another process serves it)."""
    return contextlib.nullcontext() if Path(data_dir).resolve() in _SERVED else exclusive_use(data_dir)


@contextlib.contextmanager
def exclusive_use(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's in-use lock exclusively while the block runs (no app may start serving it).

    Raises:
        DataDirInUse: when an app serves the data dir now.
    """
    try:
        with _locked(data_dir, fcntl.LOCK_EX | fcntl.LOCK_NB):
            yield
    except BlockingIOError as error:
        raise DataDirInUse(
            f"an app is serving {data_dir}: delete through it (its page, /forget or its review page), or stop it first"
        ) from error


@contextlib.contextmanager
def _locked(data_dir: Path, operation: int) -> Iterator[None]:
    path = Path(data_dir) / IN_USE_FILE
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), operation)  # raises BlockingIOError for LOCK_NB when taken
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def note_erased(data_dir: Path, conversation_ids: Iterable[str]) -> None:
    """Add conversations to the data dir's ledger of erasures done (:data:`ERASED_LEDGER`), so a later
    start does not erase them again; a failure to write is logged (the erasure is then done again)."""
    ledger = Path(data_dir) / ERASED_LEDGER
    try:
        with open(ledger, "a", encoding="utf-8") as handle:
            handle.write("".join(f"{cid}\n" for cid in sorted(conversation_ids)))
    except OSError as error:
        logger.warning("cannot write {} ({}): the erasure is done again at the next start", ledger, error)


class NothingToDelete(FeedbackError):
    """The conversation has no record in this data dir (never written, e.g. no consent, or unknown)."""


@dataclass
class LocalErasure:
    """What :func:`erase_local` did.

    Attributes:
        conversation_ids: the conversations erased.
        rewritten: shards rewritten without them -> their new size in bytes.
        removed: shards removed (they held only those conversations).
        records: how many records (lines) were removed.
        files: uploaded files removed, as data-dir paths (``files/<sha256><ext>``).
    """

    conversation_ids: frozenset[str]
    rewritten: dict[Path, int] = field(default_factory=dict)
    removed: list[Path] = field(default_factory=list)
    records: int = 0
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log and the terminal."""
        return (
            f"{self.records} records removed from {len(self.rewritten) + len(self.removed)} shards "
            f"({len(self.removed)} shards deleted), {len(self.files)} uploaded files removed"
        )


def _needles(conversation_ids: Iterable[str]) -> list[bytes]:
    """The bytes a shard line of each conversation holds (records are written by ``model_dump_json``: no
    spaces, and a quote inside a text is escaped, so a message quoting an id never matches)."""
    return [f'"conversation_id":"{cid}"'.encode() for cid in conversation_ids]


def _line_is_erased(line: bytes, ids: frozenset[str], needles: list[bytes]) -> bool:
    if not any(needle in line for needle in needles):
        return False
    try:
        payload = json.loads(line)
    except ValueError:
        return True  # a torn or broken line naming the conversation: its text goes too
    return not isinstance(payload, dict) or payload.get("conversation_id") in ids


def _files_of(line: bytes) -> set[str]:
    """The uploaded files a turn line references (``messages[].files``)."""
    try:
        payload = json.loads(line)
    except ValueError:
        return set()
    if not isinstance(payload, dict):
        return set()
    return {
        path
        for message in payload.get("messages") or ()
        if isinstance(message, dict)
        for path in message.get("files") or ()
        if isinstance(path, str)
    }


def _rewrite(path: Path, kept: list[bytes]) -> int:
    """Replace ``path`` by ``kept`` lines (atomically: a temporary file in the same folder, fsynced, then
    renamed); an empty result removes the shard. Returns the new size (0: removed)."""
    if not kept:
        path.unlink(missing_ok=True)
        return 0
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-erase-", delete=False)  # noqa: SIM115
    try:
        with handle:
            for line in kept:
                handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return sum(len(line) for line in kept)


def _offset_map(old_ends: list[int], new_ends: list[int]) -> Callable[[int], int]:
    """Maps a line boundary of the old shard to the same boundary in the rewritten one (the end of the
    last kept line at or before it)."""

    def convert(offset: int) -> int:
        new = 0
        for old_end, new_end in zip(old_ends, new_ends, strict=True):
            if old_end > offset:
                break
            new = new_end
        return new

    return convert


def erase_local(
    store: FeedbackStore, conversation_ids: Iterable[str], *, index: TurnIndex | None = None
) -> LocalErasure:
    """Erase conversations from a data dir: every JSONL shard holding a line of one of them is rewritten
    without it (a shard left empty is removed), their uploaded files that no other turn references are
    removed, ``index`` (when given) forgets them and follows the rewritten shards' offsets, and the review
    index (derived, rebuilt at its next use) is removed.

    Deletion records are kept (they hold no text). The store's open shards are closed first, so no shard
    being appended to is rewritten. Call it with the Hub sync paused (:meth:`HubSync.erase` does). Memory:
    one shard at a time; time: one read of every shard (a byte search; only lines naming a conversation
    are parsed).

    Returns:
        What was removed (:class:`LocalErasure`).
    Raises:
        OSError: when a shard cannot be read or rewritten (the shards done so far stay rewritten; the
            rest are unchanged: running it again finishes the job).
    """
    ids = frozenset(conversation_ids)
    report = LocalErasure(ids)
    if not ids:
        return report
    needles = _needles(ids)
    if index is not None:
        for conversation_id in ids:
            index.forget(conversation_id)
    store.rotate()
    candidates: set[str] = set()
    for kind in RECORD_TYPES:
        if kind == Deletion.kind:
            continue
        for path in store.shards(kind):
            data = path.read_bytes()
            if not any(needle in data for needle in needles):
                continue
            kept, old_ends, new_ends, old_end, new_end = [], [], [], 0, 0
            for line in data.splitlines(keepends=True):
                old_end += len(line)
                if _line_is_erased(line, ids, needles):
                    report.records += 1
                    if kind == "turns":
                        candidates |= _files_of(line)
                    continue
                kept.append(line)
                new_end += len(line)
                old_ends.append(old_end)
                new_ends.append(new_end)
            size = _rewrite(path, kept)
            if size:
                report.rewritten[path] = size
            else:
                report.removed.append(path)
            if index is not None and kind == "turns":
                index.shard_rewritten(path, _offset_map(old_ends, new_ends))
    report.files = _remove_unused_files(store, candidates)
    if report.rewritten or report.removed:
        _drop_review_index(store.root)
    logger.info("erased {} conversation(s) from {}: {}", len(ids), store.root, report.summary())
    return report


def _drop_review_index(root: Path) -> None:
    """Remove the data dir's review index (``feedback.review.index``, derived data, rebuilt at its next use):
    it treats a shard unchanged for a day as final and would keep the erased records' columns and stale
    locators into the rewritten shards."""
    from feedback.review.index import INDEX_NAME

    for name in (INDEX_NAME, f"{INDEX_NAME}.wal"):
        with contextlib.suppress(FileNotFoundError):
            (root / name).unlink()


def _remove_unused_files(store: FeedbackStore, candidates: set[str]) -> list[str]:
    """Remove the uploaded files among ``candidates`` that no remaining turn references; returns them."""
    wanted = {path for path in candidates if path.startswith(f"{FILES_DIR}/") and "/" not in path[len(FILES_DIR) + 1 :]}
    if not wanted:
        return []
    used: set[str] = set()
    needles = {path: json.dumps(path).encode() for path in wanted}
    for shard in store.shards("turns"):
        data = shard.read_bytes()
        used |= {path for path, needle in needles.items() if path not in used and needle in data}
        if used == wanted:
            return []
    removed = sorted(wanted - used)
    for path in removed:
        store.forget_file(path)
    return removed


class Eraser:
    """Deletes conversations for the page, the API, the review page and the CLI (see the module docstring).

    Args:
        recorder: the write gate (the deletion record goes through it) and its conversation index.
        sync: the Hub sync, when the data dir is synced: the erasure then runs through
            :meth:`HubSync.erase` (pushes paused, then the repo rewritten in one commit).
        resume: look for erasures a previous run did not finish, on the worker, once (default True).

    Thread-safe. Erasures run one at a time, in order, on one daemon thread.
    """

    def __init__(self, recorder: FeedbackRecorder, *, sync: HubSync | None = None, resume: bool = True) -> None:
        self.recorder = recorder
        self.sync = sync
        self.ledger = recorder.store.root / ERASED_LEDGER
        self._queue: queue.Queue[frozenset[str] | threading.Event | None] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.last_erasure: LocalErasure | None = None
        self._done: set[str] | None = None  # read from the ledger by the worker
        if resume:
            self._queue.put(frozenset())  # the worker's first job: what an earlier run left

    def forget(
        self, conversation_id: object, *, requested_by: Requester, reviewer: str | None = None, must_exist: bool = True
    ) -> Deletion:
        """Delete a conversation: append its deletion record and forget it in the index now (every reader
        ignores it from here on), and erase it from the data dir and the repo on the worker.

        ``must_exist=False`` (an operator deleting a conversation other replicas may hold) writes the
        deletion record even when this data dir holds no turn of it.

        Returns:
            The deletion record as written.
        Raises:
            FeedbackError: for a malformed id; :class:`NothingToDelete` when this data dir holds no turn
                of it (never written, e.g. declined consent, an unknown id, or already deleted); a
                conversation kept in memory only (declined consent) is forgotten there first.
            SaveError: when the deletion record cannot be written (nothing was changed).
        """
        if not isinstance(conversation_id, str) or not is_valid_id(conversation_id):
            raise FeedbackError(
                "conversation_id is missing or malformed: use 8-64 characters of A-Z, a-z, 0-9, '_' or '-'"
            )
        index = self.recorder.index
        if index.is_deleted(conversation_id):
            raise NothingToDelete(f"conversation {conversation_id} was already deleted")
        if must_exist and not index.on_disk(conversation_id):
            index.forget_in_memory(conversation_id)
            raise NothingToDelete(f"nothing of conversation {conversation_id} is recorded here")
        record = Deletion(conversation_id=conversation_id, requested_by=requested_by, reviewer=reviewer)
        written = self.recorder.write(record) or record
        index.forget(conversation_id)
        logger.bind(conversation_id=conversation_id).info(
            "conversation deleted by {}{}", requested_by, f" ({reviewer})" if reviewer else ""
        )
        self._submit(frozenset({conversation_id}))
        return written

    def _submit(self, ids: frozenset[str]) -> None:
        with self._lock:
            if self._closed:
                logger.warning("erasure of {} left for the next start: the app is stopping", sorted(ids))
                return
            self._queue.put(ids)
            self._start_locked()

    def start(self) -> None:
        """Start the worker now (it finishes erasures an earlier run left); otherwise the first
        :meth:`forget` starts it."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._worker is None and not self._closed:
            self._worker = threading.Thread(target=self._work, name="conversation-eraser", daemon=True)
            self._worker.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every erasure queued so far is done (at most ``timeout`` seconds); True when done."""
        done = threading.Event()
        self.start()
        with self._lock:
            if self._closed and (self._worker is None or not self._worker.is_alive()):
                return self._queue.empty()
            self._queue.put(done)  # type: ignore[arg-type]
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Let the queued erasures finish (at most ``timeout`` seconds) and stop the worker; what is left
        is done at the next start."""
        with self._lock:
            self._closed = True
            worker = self._worker
        self._queue.put(None)
        if worker is not None:
            worker.join(timeout)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if isinstance(job, threading.Event):
                job.set()
                continue
            try:
                ids = (job or self._unfinished()) - self._erased()
                if ids:
                    self._erase(ids)
            except Exception:  # noqa: BLE001 - the deletion record stands; the next start tries again
                logger.exception("erasing conversation(s) {} failed; the next start tries again", sorted(job))

    def _erase(self, ids: frozenset[str]) -> None:
        if self.sync is not None:
            report = self.sync.erase(ids)
        else:
            try:
                with _may_rewrite(self.recorder.store.root):
                    report = erase_local(self.recorder.store, ids, index=self.recorder.index)
            except DataDirInUse:  # e.g. the review command beside the app: the app erases it at its next start
                logger.warning(
                    "conversation(s) {} deleted; the app serving {} erases them from its shards at its next start",
                    sorted(ids),
                    self.recorder.store.root,
                )
                return
        self.last_erasure = report
        self._erased().update(ids)
        note_erased(self.recorder.store.root, ids)

    def _erased(self) -> set[str]:
        if self._done is None:
            self._done = set()
            with contextlib.suppress(FileNotFoundError):
                self._done = set(self.ledger.read_text(encoding="utf-8").split())
        return self._done

    def _unfinished(self) -> frozenset[str]:
        """Every conversation a deletion record of this data dir names (the worker leaves out those already
        in the ledger of erasures done)."""
        return frozenset({record.conversation_id for record in self.recorder.store.iter_records(Deletion.kind)})
