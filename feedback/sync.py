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
- Every process writes its own shard names, so any number of replicas push to one repo.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitScheduler, HfApi
from loguru import logger

from feedback.card import dataset_card
from feedback.store import FeedbackStore
from schemas.records import RECORD_TYPES

SYNC_PATTERNS = [*(f"{kind}/*.jsonl" for kind in RECORD_TYPES), "files/*", "README.md"]
"""What is synced: the record folders, uploaded files and the dataset card."""
_TAIL_BLOCK = 64 * 1024


@dataclass(frozen=True)
class FileToUpload:
    """One changed file found by :func:`scan_folder`: its bytes up to ``size`` are uploaded."""

    local_path: Path
    path_in_repo: str
    size: int
    mtime: float

    def operation(self) -> CommitOperationAdd:
        """The commit operation: record shards as the bytes of their complete lines, other files by path."""
        if self.local_path.suffix == ".jsonl":
            with open(self.local_path, "rb") as handle:
                return CommitOperationAdd(path_in_repo=self.path_in_repo, path_or_fileobj=handle.read(self.size))
        return CommitOperationAdd(path_in_repo=self.path_in_repo, path_or_fileobj=str(self.local_path))


def complete_size(path: Path) -> int:
    """The size of ``path`` up to and including its last newline (the whole size for non-JSONL files)."""
    size = path.stat().st_size
    if path.suffix != ".jsonl" or size == 0:
        return size
    with open(path, "rb") as handle:
        end = size
        while end > 0:
            start = max(0, end - _TAIL_BLOCK)
            handle.seek(start)
            block = handle.read(end - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


def scan_folder(folder: Path, uploaded: dict[Path, float], reported: set[Path]) -> list[FileToUpload]:
    """Files under ``folder`` matching :data:`SYNC_PATTERNS` whose mtime differs from ``uploaded``.

    A shard with a torn tail is uploaded up to its last complete line; the tail is logged once
    per path (``reported`` remembers which).
    """
    found = []
    for pattern in SYNC_PATTERNS:
        for path in sorted(folder.glob(pattern)):
            if not path.is_file() or path.name.startswith("."):
                continue
            stat = path.stat()
            if uploaded.get(path) == stat.st_mtime:
                continue
            size = complete_size(path)
            if size < stat.st_size and path not in reported:
                reported.add(path)
                logger.warning("{}: torn last line ({} bytes) left out of the upload", path, stat.st_size - size)
            found.append(FileToUpload(path, path.relative_to(folder).as_posix(), size, stat.st_mtime))
    return found


def write_card(folder: Path, card: str) -> bool:
    """Write the dataset card to ``folder/README.md`` if it differs; returns True when written."""
    path = folder / "README.md"
    if path.is_file() and path.read_text(encoding="utf-8") == card:
        return False
    tmp = path.with_name(".README.md.tmp")
    tmp.write_text(card, encoding="utf-8")
    os.replace(tmp, path)
    return True


class FeedbackScheduler(CommitScheduler):
    """A ``CommitScheduler`` for a :class:`FeedbackStore`: rotates shards before each scan, uploads
    complete lines only, and turns a failed push into one warning (retried at the next tick).

    Args:
        store: the data dir to sync; its lock guards the scan.
        repo_id: ``owner/name`` of the dataset repo (created if missing, private by default).
        every: minutes between pushes (may be a fraction, e.g. in tests).
        private: create the repo private.
        token: the Hugging Face token (never logged).
        hf_api: a configured ``HfApi`` (e.g. ``HfApi(endpoint=...)``), else one from ``token``.
    Raises:
        huggingface_hub.errors.HfHubHTTPError: when the repo cannot be created or reached.
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
    ) -> None:
        self.store = store
        self.reported: set[Path] = set()
        self.pushes = 0
        self.failures = 0
        self._secret = token
        super().__init__(
            repo_id=repo_id,
            folder_path=store.root,
            every=every,
            repo_type="dataset",
            private=private,
            token=token,
            allow_patterns=SYNC_PATTERNS,
            hf_api=hf_api or HfApi(token=token),
        )
        self.lock = store.lock

    def push_to_hub(self) -> CommitInfo | None:
        """Rotate shards, scan for changed files, commit them (outside the lock)."""
        with self.store.lock:
            self.store.rotate_while_locked()
            files = scan_folder(self.folder_path, self.last_uploaded, self.reported)
        if not files:
            return None
        info = self.api.create_commit(
            repo_id=self.repo_id,
            repo_type=self.repo_type,
            operations=[f.operation() for f in files],
            commit_message=f"Add {_describe(files)}",
            revision=self.revision,
        )
        for file in files:
            self.last_uploaded[file.local_path] = file.mtime
        self.pushes += 1
        logger.info("pushed {} to {} ({})", _describe(files), self.repo_id, info.oid[:8])
        return info

    def _push_to_hub(self) -> CommitInfo | None:
        if self._CommitScheduler__stopped:  # type: ignore[attr-defined]
            return None
        try:
            return self.push_to_hub()
        except Exception as error:  # noqa: BLE001 - any failure: keep the files, retry at the next tick
            self.failures += 1
            logger.warning(
                "push to {} failed, records stay in {} and go with the next push: {}",
                self.repo_id,
                self.folder_path,
                redact(error, self._secret),
            )
            return None


def _describe(files: Iterable[FileToUpload]) -> str:
    counts: dict[str, int] = {}
    for file in files:
        folder = file.path_in_repo.split("/", 1)[0] if "/" in file.path_in_repo else file.path_in_repo
        counts[folder] = counts.get(folder, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))


def redact(error: object, secret: str | None) -> str:
    """``str(error)`` on one line, without ``secret``."""
    text = " ".join(str(error).split())
    return text.replace(secret, "***") if secret else text


class HubSync:
    """Keeps a data dir synced to a dataset repo for the life of the app.

    :meth:`start` connects in the background (retrying while the Hub is unreachable), writes the
    dataset card, and starts a :class:`FeedbackScheduler`; :meth:`close` makes the final push.

    Args:
        store: the data dir.
        repo_id: the dataset repo.
        token: the Hugging Face token.
        every: minutes between pushes.
        private: create the repo private.
        card: the dataset card text (see :func:`feedback.card.dataset_card`).
        hf_api: a configured ``HfApi``.
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
    ) -> None:
        self.store, self.repo_id, self.token = store, repo_id, token
        self.every, self.private, self.card, self.hf_api = every, private, card, hf_api
        self.scheduler: FeedbackScheduler | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Write the card and connect in a background thread; returns at once."""
        if self.card:
            write_card(self.store.root, self.card)
        self._thread = threading.Thread(target=self._connect, name="hub-sync-connect", daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        delay = min(5.0, self.every * 60)
        while not self._closing.is_set():
            if self._try_connect():
                return
            self._closing.wait(delay)
            delay = min(delay * 2, max(self.every * 60, 5.0))

    def _try_connect(self) -> bool:
        try:
            self.scheduler = FeedbackScheduler(
                store=self.store,
                repo_id=self.repo_id,
                every=self.every,
                private=self.private,
                token=self.token,
                hf_api=self.hf_api,
            )
        except Exception as error:  # noqa: BLE001 - the Hub may be down at start: retry
            logger.warning("cannot reach dataset repo {} yet (will retry): {}", self.repo_id, redact(error, self.token))
            return False
        logger.info("syncing {} to dataset repo {} every {} min", self.store.root, self.repo_id, self.every)
        return True

    def close(self, timeout: float = 120) -> bool:
        """Stop syncing after a final push. Returns True when everything was pushed."""
        self._closing.set()
        scheduler = self.scheduler
        if scheduler is None and not self._try_connect():
            logger.warning("final push skipped: {} unreachable; run `python -m feedback push` later", self.repo_id)
            return False
        scheduler = self.scheduler
        assert scheduler is not None
        failures = scheduler.failures
        try:
            scheduler.trigger().result(timeout=timeout)
        except Exception as error:  # noqa: BLE001 - a timeout: files stay for the next run
            logger.warning("final push to {} did not finish: {}", self.repo_id, redact(error, self.token))
            return False
        finally:
            scheduler.stop()
        return scheduler.failures == failures
