"""What of a data dir goes to the Hub: the record shards (complete lines only, as Parquet in the repo's
day partitions: :mod:`feedback.hub.layout`), uploaded files and the dataset card, found by modification
time (``CommitScheduler``'s own change detection) and by a ledger of what was pushed (:class:`PushLedger`);
and writing the card into the data dir."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd
from loguru import logger

from feedback.hub.layout import repo_path, shard_parquet
from schemas.records import RECORD_TYPES

SYNC_PATTERNS = [*(f"{kind}/*.jsonl" for kind in RECORD_TYPES), "files/*", "README.md"]
"""What is synced: the record folders, uploaded files and the dataset card."""
_TAIL_BLOCK = 64 * 1024
LEDGER_DIR = ".hub-pushed"
"""The hidden folder of a data dir with its push and erasure ledgers (never synced)."""


@dataclass(frozen=True)
class FileToUpload:
    """One changed file found by :func:`scan_folder`: its bytes up to ``size`` are uploaded."""

    local_path: Path
    path_in_repo: str
    size: int
    mtime: float

    @property
    def is_shard(self) -> bool:
        """True for a record shard (uploaded as Parquet)."""
        return self.local_path.suffix == ".jsonl"

    def operation(self) -> CommitOperationAdd:
        """The commit operation: a record shard's complete lines as Parquet, other files by path."""
        if self.is_shard:
            with open(self.local_path, "rb") as handle:
                data, _ = shard_parquet(handle.read(self.size), self.local_path.parent.name, str(self.local_path))
            return CommitOperationAdd(path_in_repo=self.path_in_repo, path_or_fileobj=data)
        return CommitOperationAdd(path_in_repo=self.path_in_repo, path_or_fileobj=str(self.local_path))


class PushLedger:
    """The record shards of a data dir already pushed to a repo, and their size then, kept on disk
    (``{data_dir}/.hub-pushed/<owner>__<name>.tsv``, one line per push of a shard; never synced).

    A process's first push would otherwise send every shard again (``CommitScheduler`` remembers only
    what it pushed itself), re-creating shards that compaction has since merged into a day's Parquet
    file: each record would then be twice in the repo. A shard is pushed again only when it grew.
    """

    def __init__(self, data_dir: Path, repo_id: str) -> None:
        self.path = Path(data_dir) / LEDGER_DIR / f"{repo_id.replace('/', '__')}.tsv"
        self.sizes: dict[str, int] = {}
        self._version: tuple[int, int] | None = None
        self.refresh()

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def refresh(self) -> bool:
        """Read the file again if another writer changed it since (an erasure run while no scheduler
        existed, the ``delete`` command); returns True when it was read."""
        version = self._stat()
        if version == self._version:
            return False
        sizes: dict[str, int] = {}
        if version is not None:
            for line in self.path.read_text(encoding="utf-8").splitlines():
                name, _, size = line.rpartition("\t")
                if name and size.isdigit():
                    sizes[name] = int(size)
        self.sizes, self._version = sizes, version
        return True

    def update(self, sizes: dict[str, int], forget: Iterable[str] = ()) -> None:
        """Set shards' pushed sizes (``{kind}/{shard name}`` -> bytes) and forget others, rewriting the
        file (atomically; one line per shard). Used after an erasure rewrote or removed pushed shards.

        Raises:
            OSError: when the file cannot be written (the caller must not let the shards be pushed again).
        """
        self.refresh()
        self.sizes.update(sizes)
        for name in forget:
            self.sizes.pop(name, None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(f"{name}\t{size}\n" for name, size in self.sizes.items()), encoding="utf-8")
        os.replace(tmp, self.path)
        self._version = self._stat()

    def seed_from_flat_layout(self, api: object, repo_id: str) -> int:
        """Note the JSONL shards a repo holds in the flat layout of earlier versions (``{kind}/*.jsonl``,
        at their size there) as pushed, so upgrading an app never sends them again as Parquet (compaction
        converts them in the repo). Returns how many (a repo or folder that does not exist: none).

        Raises:
            huggingface_hub.errors.HfHubHTTPError, HubUnreachable, httpx2.HTTPError: when the Hub cannot
                be listed (the caller's push fails as any other).
        """
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

        found: dict[str, int] = {}
        for kind in RECORD_TYPES:
            try:
                entries = list(api.list_repo_tree(repo_id, path_in_repo=kind, repo_type="dataset"))
            except (EntryNotFoundError, RepositoryNotFoundError):
                continue
            for entry in entries:
                name = entry.path
                if name.endswith(".jsonl") and name.count("/") == 1 and hasattr(entry, "size"):
                    found[name] = entry.size
        self._append({name: size for name, size in found.items() if name not in self.sizes})
        return len(found)

    def pushed(self, file: FileToUpload) -> bool:
        """True when this shard was pushed at its current (complete-lines) size."""
        return file.is_shard and self.sizes.get(ledger_name(file.local_path)) == file.size

    def add(self, files: list[FileToUpload]) -> None:
        """Remember ``files`` (the shards among them) as pushed; a failure to write is logged, not raised."""
        self._append({ledger_name(file.local_path): file.size for file in files if file.is_shard})

    def _append(self, sizes: dict[str, int]) -> None:
        self.sizes.update(sizes)
        lines = [f"{name}\t{size}\n" for name, size in sizes.items()]
        if not lines:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            known = self._stat() == self._version
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write("".join(lines))
            if known:  # nobody else wrote it meanwhile: what is in memory is the file
                self._version = self._stat()
        except OSError as error:
            logger.warning("cannot write the push ledger {}: {}", self.path, error)


def ledger_name(shard: Path) -> str:
    """A shard's key in the :class:`PushLedger`: ``{kind}/{shard name}``."""
    return f"{shard.parent.name}/{shard.name}"


class ErasureLedger:
    """A data dir's erasures still owed to a repo, and the repo's deletion records already applied to it,
    kept on disk (``{data_dir}/.hub-pushed/<owner>__<name>.erasures.json``; hidden, never synced).

    Attributes:
        pending: conversations erased locally whose erasure from the repo has not been made yet (the Hub
            was unreachable); retried before each push until it succeeds.
        seen: ``deletions/`` files of the repo already read (path -> blob id).
        applied: conversations erased from this data dir (its own deletions and the repo's).
    """

    def __init__(self, data_dir: Path, repo_id: str) -> None:
        self.path = Path(data_dir) / LEDGER_DIR / f"{repo_id.replace('/', '__')}.erasures.json"
        self.pending: set[str] = set()
        self.seen: dict[str, str] = {}
        self.applied: set[str] = set()
        self._version: tuple[int, int] | None = None
        self.refresh()

    def refresh(self) -> None:
        """Read the file again if another writer changed it (a bad file is logged and counts as empty)."""
        try:
            stat = self.path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            return
        if version == self._version:
            return
        try:
            values = json.loads(self.path.read_text(encoding="utf-8"))
            self.pending = set(values.get("pending", ()))
            self.seen = dict(values.get("seen", {}))
            self.applied = set(values.get("applied", ()))
        except (OSError, ValueError, TypeError, AttributeError) as error:
            logger.warning("cannot read the erasure ledger {} ({}); starting it again", self.path, error)
        self._version = version

    def save(self) -> None:
        """Write the file atomically.

        Raises:
            OSError: when it cannot be written.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(
            json.dumps({"pending": sorted(self.pending), "seen": self.seen, "applied": sorted(self.applied)}),
            encoding="utf-8",
        )
        os.replace(tmp, self.path)
        stat = self.path.stat()
        self._version = (stat.st_mtime_ns, stat.st_size)


def mark_erased(
    rewritten: dict[Path, int], removed: Iterable[Path], ledger: PushLedger, uploaded: dict[Path, float] | None = None
) -> list[str]:
    """After a local erasure: the rewritten shards that had been pushed count as pushed at their new size
    (the repo's copy is erased by the repo erasure, so they are never uploaded again), removed shards are
    forgotten; ``uploaded`` (the scheduler's ``last_uploaded``) follows. Returns the pushed shards touched
    (``{kind}/{name}``): records of them may be in the repo.

    Raises:
        OSError: when the ledger cannot be written.
    """
    sizes, forget, touched = {}, [], []
    ledger.refresh()
    for shard in rewritten:
        name = ledger_name(shard)
        if name in ledger.sizes:
            sizes[name] = complete_size(shard)
            touched.append(name)
            if uploaded is not None:
                uploaded[shard] = shard.stat().st_mtime
    for shard in removed:
        name = ledger_name(shard)
        if uploaded is not None:
            uploaded.pop(shard, None)
        if name in ledger.sizes:
            forget.append(name)
            touched.append(name)
    if sizes or forget:
        ledger.update(sizes, forget)
    return touched


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


def scan_folder(
    folder: Path, uploaded: dict[Path, float], reported: set[Path] | None, ledger: PushLedger | None = None
) -> list[FileToUpload]:
    """Files under ``folder`` matching :data:`SYNC_PATTERNS` whose mtime differs from ``uploaded``, less
    the shards ``ledger`` holds at their size and shards with no complete line.

    Symbolic links and hidden files are skipped (never follow a link out of the data dir). A shard
    with a torn tail is uploaded up to its last complete line; the tail is logged once per path
    (``reported`` remembers which; None: not logged). A shard's path in the repo is its day
    partition's Parquet file (:func:`feedback.hub.layout.repo_path`).
    """
    found = []
    for pattern in SYNC_PATTERNS:
        for path in sorted(folder.glob(pattern)):
            if path.is_symlink() or not path.is_file() or path.name.startswith("."):
                continue
            stat = path.stat()
            if uploaded.get(path) == stat.st_mtime:
                continue
            size = complete_size(path)
            if size < stat.st_size and reported is not None and path not in reported:
                reported.add(path)
                logger.warning("{}: torn last line ({} bytes) left out of the upload", path, stat.st_size - size)
            relative = path.relative_to(folder).as_posix()
            if path.suffix == ".jsonl":
                if size == 0:
                    continue
                relative = repo_path(path.parent.name, path.name)
            file = FileToUpload(path, relative, size, stat.st_mtime)
            if ledger is None or not ledger.pushed(file):
                found.append(file)
    return found


def write_card(folder: Path, card: str) -> bool:
    """Write the dataset card to ``folder/README.md`` if it differs (atomically, through a hidden
    temporary file); returns True when written.

    Raises:
        OSError: when the folder cannot be written.
    """
    path = folder / "README.md"
    if path.is_file() and path.read_text(encoding="utf-8") == card:
        return False
    tmp = path.with_name(".README.md.tmp")
    tmp.write_text(card, encoding="utf-8")
    os.replace(tmp, path)
    return True


def count_by_folder(files: list[FileToUpload]) -> dict[str, int]:
    """How many of ``files`` are in each top folder of the repo (``README.md`` counts as its own)."""
    counts: dict[str, int] = {}
    for file in files:
        folder = file.path_in_repo.split("/", 1)[0]
        counts[folder] = counts.get(folder, 0) + 1
    return counts
