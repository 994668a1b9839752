"""What of a data dir goes to the Hub: the record shards (complete lines only, as Parquet in the repo's
day partitions: :mod:`feedback.hub.layout`), uploaded files and the dataset card, found by modification
time (``CommitScheduler``'s own change detection) and by a ledger of what was pushed (:class:`PushLedger`);
and writing the card into the data dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd
from loguru import logger

from feedback.hub.layout import repo_path, shard_parquet
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
        self.path = Path(data_dir) / ".hub-pushed" / f"{repo_id.replace('/', '__')}.tsv"
        self.sizes: dict[str, int] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                name, _, size = line.rpartition("\t")
                if name and size.isdigit():
                    self.sizes[name] = int(size)

    def seed_from_flat_layout(self, api: object, repo_id: str) -> int:
        """Note the JSONL shards a repo holds in the flat layout of earlier versions (``{kind}/*.jsonl``,
        at their size there) as pushed, so upgrading an app never sends them again as Parquet (compaction
        converts them in the repo). Returns how many (a repo or folder that does not exist: none).

        Raises:
            huggingface_hub.errors.HfHubHTTPError, HubUnreachable, httpx2.HTTPError: when the Hub cannot
                be listed (the caller's push fails as any other).
        """
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

        found = 0
        for kind in RECORD_TYPES:
            try:
                entries = list(api.list_repo_tree(repo_id, path_in_repo=kind, repo_type="dataset"))
            except (EntryNotFoundError, RepositoryNotFoundError):
                continue
            for entry in entries:
                name = entry.path
                if name.endswith(".jsonl") and name.count("/") == 1 and hasattr(entry, "size"):
                    self.sizes.setdefault(name, entry.size)
                    found += 1
        return found

    def pushed(self, file: FileToUpload) -> bool:
        """True when this shard was pushed at its current (complete-lines) size."""
        return file.is_shard and self.sizes.get(file.local_path.parent.name + "/" + file.local_path.name) == file.size

    def add(self, files: list[FileToUpload]) -> None:
        """Remember ``files`` (the shards among them) as pushed; a failure to write is logged, not raised."""
        lines = []
        for file in files:
            if file.is_shard:
                name = file.local_path.parent.name + "/" + file.local_path.name
                self.sizes[name] = file.size
                lines.append(f"{name}\t{file.size}\n")
        if not lines:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write("".join(lines))
        except OSError as error:
            logger.warning("cannot write the push ledger {}: {}", self.path, error)


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


def scan_folder(folder: Path, uploaded: dict[Path, float], reported: set[Path] | None,
                ledger: PushLedger | None = None) -> list[FileToUpload]:
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
