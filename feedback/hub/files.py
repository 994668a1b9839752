"""What of a data dir goes to the Hub: the record shards (complete lines only), uploaded files and
the dataset card, found by modification time (``CommitScheduler``'s own change detection); and
writing the card into the data dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd
from loguru import logger

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


def scan_folder(folder: Path, uploaded: dict[Path, float], reported: set[Path] | None) -> list[FileToUpload]:
    """Files under ``folder`` matching :data:`SYNC_PATTERNS` whose mtime differs from ``uploaded``.

    Symbolic links and hidden files are skipped (never follow a link out of the data dir). A shard
    with a torn tail is uploaded up to its last complete line; the tail is logged once per path
    (``reported`` remembers which; None: not logged).
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
            found.append(FileToUpload(path, path.relative_to(folder).as_posix(), size, stat.st_mtime))
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
