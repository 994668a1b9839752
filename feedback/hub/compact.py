"""Compaction of a dataset repo: the closed days' many small files merged into one Parquet file per day
and record kind, and the ``flagged`` review view rewritten.

Every push of the sync adds one small Parquet file per record kind (:mod:`feedback.hub.layout`), about
288 a day and replica at the default 5 minutes. Compaction keeps the repo within the Hub's limits (about
10,000 entries per folder, 100,000 files per repo, 100 files per commit):

- A day partition ``{kind}/{day}/`` is compacted once the day ended more than a day ago (its shards are
  closed: a shard lives at most ``shard_max_age``). Its files, in path order (file order), are merged in
  groups of at most 99 into one file (the name of the group's first shard plus ``~c`` and a content
  hash, so it sorts where its records were), each group **one commit** adding the merged file and
  deleting its sources: every commit holds each record exactly once. A day of more than 99 files takes
  a second round (merging the merged files). JSONL shards of the flat layout of earlier versions are
  converted the same way.
- A commit never rewrites a file another writer could be adding: replicas only add new shards of the
  current days. Two compactions of one repo at once (two replicas) cannot double a record either: the
  commit of the second deletes files the first already deleted, the Hub refuses it whole, and that
  partition is left for the next run.
- ``flagged/`` is then rewritten from the records at the new head (:mod:`feedback.hub.flagged`).

The local data dir is never touched: it keeps its JSONL shards (the write path and what the recorder,
the exports and the review index read); only the repo is rewritten. The sync's push ledger
(``feedback.hub.files.PushLedger``) keeps a restarted app from pushing compacted shards again.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError
from loguru import logger

from feedback.hub.client import refused_by_concurrent_change
from feedback.hub.flagged import FLAGGED_FEATURES, flagged_table
from feedback.hub.layout import (
    COMPACTED_MARK,
    DEFAULT_ROW_GROUP_ROWS,
    FLAGGED,
    MAX_COMMIT_FILES,
    PARQUET,
    ROW_GROUP_ROWS,
    ordered,
    partition_day,
    stem,
    utc_today,
)
from feedback.hub.remote import PARALLEL_READS, WHOLE_FILE_BYTES, HubRepo, HubSource
from schemas.records import RECORD_TYPES

MERGED_BYTES = 512 << 20
"""A merged file holds at most this many bytes of source files (a day larger than that keeps several)."""
FLAGGED_ROWS_PER_FILE = 100_000
FLAGGED_BATCH = 5_000
"""Flagged replies read and written at a time when the ``flagged`` view is rewritten."""


@dataclass
class CompactionReport:
    """What a compaction did: commits made, source files merged, merged files written, partitions left
    for the next run (a concurrent compaction got there first), and the ``flagged`` rows written."""

    commits: list[str] = field(default_factory=list)
    merged: int = 0
    written: int = 0
    skipped: list[str] = field(default_factory=list)
    flagged_rows: int | None = None

    def summary(self) -> str:
        """One line for the terminal and the log."""
        flagged = "" if self.flagged_rows is None else f", flagged view: {self.flagged_rows} rows"
        skipped = f", {len(self.skipped)} partitions left for the next run" if self.skipped else ""
        return f"{len(self.commits)} commits: {self.merged} files merged into {self.written}{flagged}{skipped}"


def _due(path: str, today: date, min_age_days: int) -> bool:
    day = partition_day(path)
    return path.endswith(".jsonl") or day is None or day < today - timedelta(days=min_age_days)


def _partition(path: str) -> str:
    parts = path.split("/")
    day = partition_day(path)
    return f"{parts[0]}/{day.isoformat() if day else 'undated'}"


def _merge(repo: HubRepo, kind: str, paths: list[str], folder: Path) -> tuple[str, Path, int]:
    """The records of ``paths`` (in order) as one Parquet file written to ``folder`` a source file at a
    time (memory holds a few source files, never the merged one); returns its repo path, file and rows."""
    from feedback.export.read import parse_jsonl
    from feedback.features import record_schema

    schema = record_schema(kind)
    target = folder / f"merged-{len(list(folder.iterdir()))}{PARQUET}"

    def read(path: str) -> pa.Table:
        if path.endswith(PARQUET):
            return ordered(repo.read_columns(path, schema.names).cast(schema))
        return ordered(parse_jsonl(repo.cat(path), schema, origin=f"{repo.repo_id}/{path}")[0])

    rows, group_rows = 0, ROW_GROUP_ROWS.get(kind, DEFAULT_ROW_GROUP_ROWS)
    small = [path for path in paths if repo.sizes.get(path, 0) <= WHOLE_FILE_BYTES]
    with (
        pq.ParquetWriter(target, ordered(schema.empty_table()).schema, compression="zstd") as writer,
        ThreadPoolExecutor(PARALLEL_READS) as pool,
    ):
        start = 0
        while start < len(paths):
            if paths[start] not in small:  # a large (compacted) file: a row group at a time
                for table in repo.row_groups(paths[start], schema.names):
                    writer.write_table(ordered(table.cast(schema)), row_group_size=group_rows)
                    rows += table.num_rows
                start += 1
                continue
            batch = []
            while start < len(paths) and paths[start] in small and len(batch) < PARALLEL_READS:
                batch.append(paths[start])
                start += 1
            for table in pool.map(read, batch):  # small files: several at once, in order
                writer.write_table(table, row_group_size=group_rows)
                rows += table.num_rows
    digest = hashlib.sha256()
    with open(target, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    first = stem(paths[0]).split("~", 1)[0]
    return f"{_partition(paths[0])}/{first}{COMPACTED_MARK}{digest.hexdigest()[:8]}{PARQUET}", target, rows


def due_partitions(paths: list[str], today: date, min_age_days: int = 1) -> dict[str, list[str]]:
    """The partitions to compact (``{kind}/{day}`` -> its files in path order): days that ended more than
    ``min_age_days`` ago, and every JSONL shard of the flat layout."""
    partitions: dict[str, list[str]] = defaultdict(list)
    for path in sorted(paths):
        if _due(path, today, min_age_days):
            partitions[_partition(path)].append(path)
    return dict(partitions)


def merge_groups(paths: list[str], sizes: dict[str, int] | None = None) -> list[list[str]]:
    """One round of a partition's compaction: its files, in order, in groups of at most
    ``MAX_COMMIT_FILES - 1`` files and :data:`MERGED_BYTES` (``sizes``: bytes per path; a file that
    large stays alone), each merged into one file by one commit. Rounds go on while
    :func:`needs_compaction`."""
    sizes = sizes or {}
    groups: list[list[str]] = []
    total = 0
    for path in paths:
        size = sizes.get(path, 0)
        if not groups or len(groups[-1]) >= MAX_COMMIT_FILES - 1 or total + size > MERGED_BYTES:
            groups.append([])
            total = 0
        groups[-1].append(path)
        total += size
    return groups


def needs_compaction(paths: list[str], sizes: dict[str, int] | None = None) -> bool:
    """True while a round would merge something: a group of several files, or a JSONL shard of the flat
    layout."""
    return any(len(group) > 1 or not group[0].endswith(PARQUET) for group in merge_groups(paths, sizes))


def _compact_partition(repo: HubRepo, kind: str, paths: list[str], report: CompactionReport) -> None:
    """Merge one partition's files, at most ``MAX_COMMIT_FILES - 1`` per commit, until nothing is left to merge."""
    while needs_compaction(paths, repo.sizes):
        merged_paths = []
        for group in merge_groups(paths, repo.sizes):
            if len(group) == 1 and group[0].endswith(PARQUET):
                merged_paths.append(group[0])
                continue
            with tempfile.TemporaryDirectory(prefix="compact-") as folder:
                target, merged, rows = _merge(repo, kind, group, Path(folder))
                operations = [
                    CommitOperationAdd(path_in_repo=target, path_or_fileobj=str(merged)),
                    *(CommitOperationDelete(path_in_repo=path) for path in group),
                ]
                info = _commit(
                    repo, operations, f"Compact {len(group)} {kind} files of {_partition(group[0])} ({rows} records)"
                )
                repo.sizes[target] = merged.stat().st_size
            if info is None:
                report.skipped.append(_partition(group[0]))
                return
            report.commits.append(info.oid)
            repo.sha = info.oid  # read the merged file (and the rest, unchanged) at the new commit
            report.merged += len(group)
            report.written += 1
            merged_paths.append(target)
        paths = merged_paths  # fewer each round: a day of more than 99 files takes a second round


def _commit(repo: HubRepo, operations: list, message: str) -> object | None:
    """Commit ``operations``; None when the Hub refuses because the files changed meanwhile."""
    try:
        return repo.api.create_commit(repo.repo_id, repo_type="dataset", operations=operations, commit_message=message)
    except HfHubHTTPError as error:
        if not refused_by_concurrent_change(error):
            raise
        logger.info("the repo changed meanwhile (another compaction?), left for the next run: {}", error)
        return None


def compact_repo(
    repo_id: str,
    *,
    api: HfApi | None = None,
    token: str | None = None,
    today: date | None = None,
    min_age_days: int = 1,
    flagged: bool = True,
) -> CompactionReport:
    """Compact a dataset repo (see the module docstring).

    Args:
        repo_id: ``owner/name``.
        api: a configured ``HfApi`` (default: one for ``$HF_ENDPOINT`` and the token).
        today: the current UTC day (tests).
        min_age_days: compact a day once it ended more than this many days ago.
        flagged: rewrite the ``flagged`` view too.
    Raises:
        FileNotFoundError: the repo cannot be read.
        huggingface_hub.errors.HfHubHTTPError: the Hub refuses a commit for another reason than a
            concurrent change.
    """
    repo = HubRepo(repo_id, token=token, api=api)
    repo.pin()
    report, today = CompactionReport(), today or utc_today()
    for kind in RECORD_TYPES:
        partitions = due_partitions([path for path, _, _ in repo.listing(kind)], today, min_age_days)
        for name in sorted(partitions):
            _compact_partition(repo, kind, partitions[name], report)
    if flagged:
        report.flagged_rows = write_flagged(repo)
    logger.info("compacted {}: {}", repo_id, report.summary())
    return report


def write_flagged(repo: HubRepo) -> int:
    """Rewrite ``flagged/`` from the repo's records at its current head, in one commit; returns its rows.

    The rows are built :data:`FLAGGED_BATCH` at a time (a page of the queue each), so memory holds one
    batch of records and the compressed files, not the whole view."""
    from feedback.review.index import ReviewIndex

    repo.pin()
    source = HubSource(repo)
    with (
        tempfile.TemporaryDirectory(prefix="flagged-index-") as folder,
        ReviewIndex(source, Path(folder) / "index.duckdb").connect() as con,
    ):
        files, rows = _flagged_files(con, source)
    old = list(repo.fs.ls(repo.url(FLAGGED), detail=False)) if _has_folder(repo, FLAGGED) else []
    operations = [
        CommitOperationAdd(
            path_in_repo=f"{FLAGGED}/{FLAGGED}-{hashlib.sha256(data).hexdigest()[:8]}-{number:05d}{PARQUET}",
            path_or_fileobj=data,
        )
        for number, data in enumerate(files)
    ]
    added = {op.path_in_repo for op in operations}
    old_paths = [p.split(f"@{repo.sha}/", 1)[-1] for p in old]
    operations += [CommitOperationDelete(path_in_repo=p) for p in old_paths if p not in added]
    if added == set(old_paths):
        return rows  # the same rows as already there
    repo.api.create_commit(
        repo.repo_id,
        repo_type="dataset",
        operations=operations[:MAX_COMMIT_FILES],
        commit_message=f"Rewrite the flagged view ({rows} flagged replies)",
    )
    return rows


def _flagged_files(con: object, source: HubSource) -> tuple[list[bytes], int]:
    """The ``flagged`` view as Parquet files of at most :data:`FLAGGED_ROWS_PER_FILE` rows, and its rows."""
    from feedback.review.queue import QueueFilter, queue_page

    schema = ordered(FLAGGED_FEATURES.arrow_schema.empty_table()).schema
    files: list[bytes] = []
    sink, writer, in_file, rows, offset = None, None, 0, 0, 0
    while True:
        page = queue_page(con, source, QueueFilter(status=None), offset=offset, limit=FLAGGED_BATCH)
        if writer is None or in_file >= FLAGGED_ROWS_PER_FILE:
            if writer is not None:
                writer.close()
                files.append(sink.getvalue())
            sink = io.BytesIO()
            writer, in_file = pq.ParquetWriter(sink, schema, compression="zstd"), 0
        table = ordered(flagged_table(page.items))
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS[FLAGGED])
        in_file, rows, offset = in_file + table.num_rows, rows + table.num_rows, offset + FLAGGED_BATCH
        if offset >= page.total:
            break
    writer.close()
    files.append(sink.getvalue())
    return files, rows


def _has_folder(repo: HubRepo, folder: str) -> bool:
    try:
        return repo.fs.isdir(repo.url(folder))
    except (OSError, HfHubHTTPError):
        return False
