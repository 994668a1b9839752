"""Syncing the data dir to a Hugging Face dataset repo with ``huggingface_hub.CommitScheduler``.

The policy:

- Before each scan, under the store's lock, the open shards are closed, so new records go to new
  shards and every scanned shard is complete and never changes again. A commit therefore uploads
  only the records written since the previous one: bytes per commit follow the new records, not
  the size of the dataset (``CommitScheduler`` re-uploads a changed file whole).
- Only complete lines are uploaded: a torn last line left by a crash is reported once and left out.
- The lock guards the scan only, never the network call, so a slow or failing Hub never blocks
  a chat. A failed push logs one warning and changes nothing locally; the files are sent by the
  next push. ``create_repo`` failing at start (Hub down) is retried in the background.
- Every Hub call has a timeout (:func:`feedback.hub.client.use_hub_timeout`), and inside a push a
  network failure is final for that push (:class:`~feedback.hub.client.HubUnreachable`:
  ``huggingface_hub`` does not retry it with its back-off sleeps): a Hub connection that is
  accepted and never answered costs one push attempt, and the next tick pushes again.
- Pushes run one at a time on the scheduler's own daemon thread, and a tick never queues a second
  push behind one still waiting to start; the final push at shutdown waits a bounded time and
  then leaves what it could not send on disk, named in one log line, for the next run's first
  push (which sends every file of the data dir). A hanging push never holds up the process exit.
- Every process writes its own shard names, so any number of replicas push to one repo.
- Deletions: before each scan, the repo's deletion records not read before (one listing of
  ``deletions/``) are applied to the data dir (``erase_local``), so nothing deleted elsewhere is uploaded
  again, and a repo erasure owed (the Hub was down) is made. :meth:`HubSync.erase` erases with pushes
  paused (:attr:`FeedbackScheduler.push_lock`) and makes the repo commit (:mod:`feedback.hub.erase`).
- The token is registered with :mod:`feedback.redaction`, and errors are logged through
  :func:`~feedback.hub.client.failure_reason`: no log line shows it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import CommitInfo, CommitScheduler, HfApi
from loguru import logger

from feedback.hub.client import fail_fast_here, failure_reason, hub_api, use_hub_timeout
from feedback.hub.files import (
    SYNC_PATTERNS,
    ErasureLedger,
    FileToUpload,
    PushLedger,
    count_by_folder,
    mark_erased,
    scan_folder,
    write_card,
)
from feedback.hub.layout import MAX_COMMIT_FILES
from feedback.privacy.deletion import LocalErasure, erase_local
from feedback.redaction import register_secret
from feedback.store import FILES_DIR, FeedbackStore
from schemas.records import RECORD_TYPES

if TYPE_CHECKING:
    from feedback.hub.erase import RepoErasure
    from feedback.index import TurnIndex

FINAL_PUSH_SECONDS = 15.0
"""How long :meth:`HubSync.close` waits for the final push by default (seconds)."""
COMPACT_HOURS = 24.0
"""How often a running app compacts its repo (:mod:`feedback.hub.compact`), in hours."""
COMPACT_FIRST_SECONDS = 15 * 60.0
"""How long after connecting the app compacts first (after its first pushes, off the start-up path)."""


class FeedbackScheduler(CommitScheduler):
    """A ``CommitScheduler`` for a :class:`FeedbackStore`: rotates shards before each scan, uploads
    complete lines only, and turns a failed push into one warning (retried at the next tick).

    Pushes run on the scheduler's own daemon thread (see :meth:`trigger`), so a push stuck on the
    network never holds up the process exit.

    Args:
        store: the data dir to sync; its lock guards the scan.
        repo_id: ``owner/name`` of the dataset repo (created if missing, private by default).
        every: minutes between pushes (may be a fraction, e.g. in tests).
        private: create the repo private.
        token: the Hugging Face token (registered for redaction: never logged).
        hf_api: a configured ``HfApi`` (e.g. ``HfApi(endpoint=...)``), else one for ``$HF_ENDPOINT`` and ``token``.
        push_lock: held by every push from start to end (:class:`HubSync` holds it to pause pushes while it
            erases); default: a new lock.
        erasures: the data dir's :class:`~feedback.hub.files.ErasureLedger` for this repo (default: read
            from the data dir).
        index: the conversation index, kept up to date by an erasure (``erase_local``).
    Raises:
        huggingface_hub.errors.HfHubHTTPError: when the repo cannot be created or reached.
        HubUnreachable, httpx2.HTTPError: when the Hub cannot be reached.
    """

    def __init__(
        self,
        *,
        store: FeedbackStore,
        repo_id: str,
        every: float = 5,
        private: bool = True,
        token: str | None = None,
        hf_api: HfApi | None = None,
        push_lock: threading.Lock | None = None,
        erasures: ErasureLedger | None = None,
        index: TurnIndex | None = None,
    ) -> None:
        register_secret(token)
        self.store = store
        self.ledger = PushLedger(store.root, repo_id)
        self.push_lock = push_lock or threading.Lock()
        self.erasures = erasures or ErasureLedger(store.root, repo_id)
        self.index = index
        self.reported: set[Path] = set()
        self.last_error: str | None = None
        self.quiet_failures = False
        self._stopped = threading.Event()
        self._queue_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Future | None] = queue.SimpleQueue()
        self._waiting: Future | None = None
        self._worker: threading.Thread | None = None
        self._seeded = False
        super().__init__(  # starts the tick thread, whose first tick calls trigger()
            repo_id=repo_id,
            folder_path=store.root,
            every=every,
            repo_type="dataset",
            private=private,
            token=token,
            allow_patterns=SYNC_PATTERNS,
            hf_api=hf_api or hub_api(token),
        )
        self.lock = store.lock

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called: later triggers push nothing."""
        return self._stopped.is_set()

    def stop(self) -> None:
        """Stop the scheduler: no push starts after this (one already running finishes on its own)."""
        self._stopped.set()
        super().stop()
        self._queue.put(None)  # ends the worker once the pushes queued before are answered

    def trigger(self) -> Future:
        """Ask for a push; returns a ``Future`` of its ``CommitInfo`` (None when nothing was pushed).

        Pushes run one at a time on this scheduler's daemon thread. A push that has not started
        yet is shared: it scans the folder when it starts, so it sends everything written before.
        """
        with self._queue_lock:
            waiting = self._waiting
            if waiting is not None and not waiting.running() and not waiting.done():
                return waiting
            future: Future = Future()
            if self.stopped:
                future.set_result(None)
                return future
            self._waiting = future
            self._queue.put(future)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="hub-sync-push", daemon=True)
                self._worker.start()
            return future

    def _work(self) -> None:
        fail_fast_here()
        while (future := self._queue.get()) is not None:
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(None if self.stopped else self.push_to_hub())
            except BaseException as error:  # noqa: BLE001 - hand it to the waiter; the worker goes on
                future.set_exception(error)

    def push_to_hub(self) -> CommitInfo | None:
        """Apply the repo's new deletion records, retry the erasures the repo is owed, then rotate shards,
        scan for changed files and commit them (outside the store's lock), all under :attr:`push_lock`.

        Never raises: a failure is logged as one warning (unless :attr:`quiet_failures`), kept in
        :attr:`last_error`, and the files go with the next push. Returns the commit, or None when
        there was nothing to push or the push failed.
        """
        with self.push_lock:
            return self.push_locked()

    def push_locked(self) -> CommitInfo | None:
        """:meth:`push_to_hub` for a caller holding :attr:`push_lock` (:meth:`HubSync.erase`)."""
        try:
            if not self._seeded:  # once: the flat JSONL shards a repo of earlier versions holds count as pushed
                self.ledger.seed_from_flat_layout(self.api, self.repo_id)
                self._seeded = True
            self.ledger.refresh()  # an erasure made while this scheduler did not exist, or by the command
            self.apply_remote_deletions()  # before the scan: nothing deleted elsewhere is uploaded again
            self.erase_pending()
            with self.store.lock:
                self.store.rotate_while_locked()
                files = scan_folder(self.folder_path, self.last_uploaded, self.reported, self.ledger)
            if not files:
                return None
            for start in range(0, len(files), MAX_COMMIT_FILES):
                chunk = files[start : start + MAX_COMMIT_FILES]
                info = self.api.create_commit(
                    repo_id=self.repo_id,
                    repo_type=self.repo_type,
                    operations=[f.operation() for f in chunk],
                    commit_message=f"Add {_describe(chunk)}",
                    revision=self.revision,
                )
                self._pushed(chunk)
        except Exception as error:  # noqa: BLE001 - any failure: keep the files, retry at the next tick
            self.last_error = failure_reason(error)
            if not self.quiet_failures:
                logger.warning(
                    "push to {} failed, records stay in {} and go with the next push: {}",
                    self.repo_id,
                    self.folder_path,
                    self.last_error,
                )
            return None
        logger.info("pushed {} to {} ({})", _describe(files), self.repo_id, info.oid[:8])
        return info

    def apply_remote_deletions(self) -> set[str]:
        """Erase from the data dir the conversations of the repo's deletion records it has not applied yet
        (other replicas' deletions, the ``delete`` command's): the head's commit, one listing of
        ``deletions/`` at it, and a read of the ``conversation_id`` column of each file not read before.
        Shards that had been pushed and held them are marked pushed at their new size, and (their records
        may have reached the repo after its erasure) the repo erasure is owed again for those
        conversations. Returns the conversations erased.

        Raises:
            huggingface_hub.errors.HfHubHTTPError, HubUnreachable, httpx2.HTTPError: the repo cannot be read
                (the push fails, so nothing deleted elsewhere is uploaded).
            OSError: the ledgers cannot be written.
        """
        from feedback.hub.erase import DELETIONS
        from feedback.hub.layout import repo_path
        from feedback.hub.remote import HubRepo

        self.erasures.refresh()
        repo = HubRepo(self.repo_id, api=self.api)
        repo.pin()  # the head's commit: the files listed are read at it, whatever a compaction does meanwhile
        listing = repo.listing(DELETIONS)
        own = {repo_path(DELETIONS, shard.name) for shard in self.store.shards(DELETIONS)}
        new = [(path, blob) for path, blob, _ in listing if self.erasures.seen.get(path) != blob and path not in own]
        if not new:
            return set()
        ids: set[str] = set()
        for path, _ in new:
            ids |= _conversations_of(repo, path)
        fresh = ids - self.erasures.applied
        if fresh:
            local = erase_local(self.store, fresh, index=self.index)
            touched = mark_erased(local.rewritten, local.removed, self.ledger, self.last_uploaded)
            for path in local.files:
                self.last_uploaded.pop(self.store.root / path, None)
            if touched:
                self.erasures.pending |= fresh
            self.erasures.applied |= fresh
            logger.info(
                "erased {} conversation(s) deleted elsewhere from {}: {} records",
                len(fresh),
                self.store.root,
                local.records,
            )
        self.erasures.seen = {path: blob for path, blob, _ in listing}
        self.erasures.save()
        return fresh

    def erase_pending(self) -> RepoErasure | None:
        """Make the repo erasure owed (:attr:`ErasureLedger.pending`), if any; on success it is forgotten.
        A failure is logged (the push goes on: erased shards are never uploaded again) and retried before
        the next push. Returns what was done, or None (nothing owed, or it failed)."""
        from feedback.hub.erase import erase_from_repo

        self.erasures.refresh()
        if not self.erasures.pending:
            return None
        ids = set(self.erasures.pending)
        try:
            result = erase_from_repo(self.repo_id, ids, api=self.api)
        except Exception as error:  # noqa: BLE001 - kept, retried before the next push
            self.last_error = failure_reason(error)
            logger.warning(
                "erasing {} conversation(s) from {} failed, retried before the next push: {}",
                len(ids),
                self.repo_id,
                self.last_error,
            )
            return None
        self.erasures.pending -= ids
        self.erasures.save()
        return result

    def _pushed(self, files: list[FileToUpload]) -> None:
        for file in files:
            self.last_uploaded[file.local_path] = file.mtime
        self.ledger.add(files)

    def unpushed(self) -> list[FileToUpload]:
        """The synced files changed since this scheduler last pushed them (all of them before its
        first push)."""
        with self.store.lock:
            return scan_folder(self.folder_path, dict(self.last_uploaded), None, self.ledger)

    def final_push(self, timeout: float) -> bool:
        """Push what is left, wait at most ``timeout`` seconds for it, then :meth:`stop`.

        Failures from here on are not logged (:attr:`quiet_failures`): the caller reports what is
        left (:meth:`unpushed`) in one line. Returns False when the push had not finished in time.
        """
        self.quiet_failures = True
        try:
            self.trigger().result(timeout=timeout)
        except FutureTimeout:
            return False
        finally:
            self.stop()
        return True


def _conversations_of(repo: object, path: str) -> set[str]:
    """The ``conversation_id`` values of one record file of a repo (a ``HubRepo``)."""
    import json

    if path.endswith(".jsonl"):
        ids = set()
        for line in repo.cat(path).splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("conversation_id"), str):
                ids.add(record["conversation_id"])
        return ids
    return {cid for cid in repo.read_columns(path, ["conversation_id"]).column(0).to_pylist() if cid}


def _describe(files: list[FileToUpload]) -> str:
    """What a commit holds, for its message: ``"1 README.md, 2 ratings, 2 turns"``."""
    return ", ".join(f"{n} {name}" for name, n in sorted(count_by_folder(files).items()))


def describe_unpushed(files: list[FileToUpload]) -> str:
    """What ``files`` hold, for a log line: ``"2 turns shards, 1 ratings shards, 1 uploaded files"``
    (record kinds in :data:`RECORD_TYPES` order, then uploaded files, then the dataset card)."""
    counts = count_by_folder(files)
    parts = [f"{counts[kind]} {kind} shards" for kind in RECORD_TYPES if kind in counts]
    if FILES_DIR in counts:
        parts.append(f"{counts[FILES_DIR]} uploaded files")
    if "README.md" in counts:
        parts.append("the dataset card")
    return ", ".join(parts) or "nothing"


@dataclass
class HubErasure:
    """What :meth:`HubSync.erase` did: the data dir's erasure, the repo's (None: owed, made before a later
    push) and, then, why it could not be made now."""

    local: LocalErasure
    repo: RepoErasure | None
    error: str | None = None


class HubSync:
    """Keeps a data dir synced to a dataset repo for the life of the app.

    :meth:`start` sets the Hub timeout, connects in the background (retrying while the Hub is
    unreachable), writes the dataset card, and starts a :class:`FeedbackScheduler`; :meth:`close`
    makes the final push, in bounded time.

    Args:
        store: the data dir.
        repo_id: the dataset repo.
        token: the Hugging Face token.
        every: minutes between pushes.
        private: create the repo private.
        card: the dataset card text (see :func:`feedback.hub.card.dataset_card`).
        hf_api: a configured ``HfApi``.
        timeout: seconds every Hub call may wait on the network (see :func:`use_hub_timeout`;
            None: ``$FEEDBACK_HUB_TIMEOUT``, else 30).
        compact_hours: compact the repo this often while connected (0: never); the first run comes
            :data:`COMPACT_FIRST_SECONDS` after connecting. A failed run logs one warning.
        index: the conversation index (``FeedbackRecorder.index``), kept up to date by erasures
            (:meth:`erase`, and the repo's deletion records applied before each push); may be set later
            as the attribute :attr:`index`, before :meth:`start`.
    Raises:
        ValueError: (from :meth:`start`) for a timeout outside 0.1 to 600 seconds.
    """

    def __init__(
        self,
        store: FeedbackStore,
        *,
        repo_id: str,
        token: str | None,
        every: float = 5,
        private: bool = True,
        card: str | None = None,
        hf_api: HfApi | None = None,
        timeout: float | None = None,
        compact_hours: float = COMPACT_HOURS,
        index: TurnIndex | None = None,
    ) -> None:
        register_secret(token)
        self.compact_hours = compact_hours
        self.index = index
        self.push_lock = threading.Lock()  # pushes hold it; erase() holds it to pause them
        self.erasures = ErasureLedger(store.root, repo_id)
        self.last_erasure: HubErasure | None = None
        self.store, self.repo_id, self.token = store, repo_id, token
        self.every, self.private, self.card, self.hf_api = every, private, card, hf_api
        self.timeout = timeout
        self.scheduler: FeedbackScheduler | None = None
        self._closing = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._connect_error = ""
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Set the Hub timeout, write the card and connect in a background thread; returns at once."""
        use_hub_timeout(self.timeout)
        if self.card:
            write_card(self.store.root, self.card)
        self._thread = threading.Thread(target=self._connect, name="hub-sync-connect", daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        fail_fast_here()
        delay = min(5.0, self.every * 60)
        while not self._try_connect():
            if self._closing.is_set():  # that was the last try, made after close() began
                return
            self._closing.wait(delay)
            delay = min(delay * 2, max(self.every * 60, 5.0))

    def _try_connect(self) -> bool:
        try:
            scheduler = FeedbackScheduler(
                store=self.store,
                repo_id=self.repo_id,
                every=self.every,
                private=self.private,
                token=self.token,
                hf_api=self.hf_api,
                push_lock=self.push_lock,
                erasures=self.erasures,
                index=self.index,
            )
        except Exception as error:  # noqa: BLE001 - the Hub may be down at start: retry
            self._connect_error = failure_reason(error)
            if not self._closing.is_set():
                logger.warning("cannot reach dataset repo {} yet (will retry): {}", self.repo_id, self._connect_error)
            return False
        with self._lock:
            if self._closed:  # close() gave up waiting for this connection: push nothing more
                scheduler.stop()
                return True
            self.scheduler = scheduler
        logger.info("syncing {} to dataset repo {} every {} min", self.store.root, self.repo_id, self.every)
        if self.compact_hours > 0:
            threading.Thread(target=self._compact_loop, args=(scheduler,), name="hub-compact", daemon=True).start()
        return True

    def _compact_loop(self, scheduler: FeedbackScheduler) -> None:
        """Compact the repo every :attr:`compact_hours` until :meth:`close` (a daemon thread: an exit
        never waits for it; a compaction cut short leaves the repo as its last commit left it). The first
        run waits for a push to finish first, so it compacts what this data dir had at start too."""
        from feedback.hub.compact import compact_repo

        delay, first = COMPACT_FIRST_SECONDS, True
        while not self._closing.wait(delay):
            if first:
                first = False
                with contextlib.suppress(Exception):  # a failed push is logged by the push itself
                    scheduler.trigger().result(timeout=max(60.0, self.every * 60))
                if self._closing.is_set():
                    return
            try:
                compact_repo(self.repo_id, api=scheduler.api)
            except Exception as error:  # noqa: BLE001 - the next run tries again
                logger.warning(
                    "compaction of {} failed (next try in {} h): {}",
                    self.repo_id,
                    self.compact_hours,
                    failure_reason(error),
                )
            delay = self.compact_hours * 3600

    def erase(self, conversation_ids: Iterable[str]) -> LocalErasure:
        """Erase conversations from the data dir and the repo, with pushes paused (``Eraser``'s worker calls
        this; the deletion records are already in the data dir).

        Under :attr:`push_lock` (no push runs meanwhile; a push running waits until it ends): push what is
        pending (so the deletion records reach the repo), erase the data dir
        (``feedback.privacy.deletion.erase_local``, which updates :attr:`index`), make the rewritten shards
        that had been pushed count as pushed at their new size and forget the removed ones (push ledger, the
        scheduler's ``last_uploaded``), then erase the repo (:func:`feedback.hub.erase.erase_from_repo`, one
        commit). When the Hub cannot be reached (or before the sync ever connected), the repo erasure is
        remembered in the data dir (:class:`~feedback.hub.files.ErasureLedger`) and made before a later push.
        Network failures are final in the calling thread from then on (:func:`fail_fast_here`).

        Returns:
            What was erased from the data dir; :attr:`last_erasure` also holds the repo erasure (None when it
            is owed for later) and why it could not be made now.
        Raises:
            ValueError: for a malformed conversation id, or none.
            OSError: the data dir or its ledgers cannot be written (then nothing is marked pushed).
        """
        from feedback.hub.erase import check_ids

        ids = check_ids(conversation_ids)
        fail_fast_here()
        with self.push_lock:
            with self._lock:
                scheduler = self.scheduler
            live = scheduler is not None and not scheduler.stopped
            if live:
                scheduler.push_locked()  # the deletion records (and whatever else is pending) first
            local = erase_local(self.store, ids, index=self.index)
            ledger = scheduler.ledger if scheduler is not None else PushLedger(self.store.root, self.repo_id)
            uploaded = scheduler.last_uploaded if scheduler is not None else None
            mark_erased(local.rewritten, local.removed, ledger, uploaded)
            if uploaded is not None:
                for path in local.files:
                    uploaded.pop(self.store.root / path, None)
            self.erasures.refresh()
            self.erasures.pending |= ids
            self.erasures.applied |= ids
            self.erasures.save()
            repo = scheduler.erase_pending() if live else None
        error = None if repo is not None else (scheduler.last_error if live else "the repo was never reached")
        if repo is None:
            logger.warning(
                "{} conversation(s) erased from {}; their erasure from {} is owed and made before a later push ({})",
                len(ids),
                self.store.root,
                self.repo_id,
                error,
            )
        self.last_erasure = HubErasure(local, repo, error)
        return local

    def close(self, timeout: float = FINAL_PUSH_SECONDS) -> bool:
        """Make the final push and stop syncing, within about ``timeout`` seconds whatever the Hub does.

        What could not be pushed stays in the data dir, is named in one warning line, and goes
        with the next run's first push. Returns True when everything was pushed.
        """
        deadline = time.monotonic() + timeout
        self._closing.set()  # a connect loop waiting to retry makes its last try now
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            self._closed = True
            scheduler = self.scheduler
        if scheduler is None:
            left = scan_folder(self.store.root, {}, None)
            hung = self._thread is not None and self._thread.is_alive()
            why = "the repo was never reached: " + (
                f"no answer from the Hub within {timeout:g} s" if hung else self._connect_error or "unknown error"
            )
        elif not scheduler.final_push(max(0.0, deadline - time.monotonic())):
            left = scheduler.unpushed()
            why = f"no answer from the Hub within {timeout:g} s"
        else:
            left = scheduler.unpushed()
            why = scheduler.last_error or "unknown error"
        if not left:
            return True
        logger.warning(
            "final push to {} did not finish: {} stay in {} and go with the next run's push; reason: {}",
            self.repo_id,
            describe_unpushed(left),
            self.store.root.resolve(),
            why,
        )
        return False
