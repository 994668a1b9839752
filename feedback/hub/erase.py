"""Erasing conversations from a dataset repo: every file of the repo's head that holds a record of them is
rewritten without it, the uploaded files only they used are deleted, and (``purge_history``) the history
that still holds them is discarded.

What :func:`erase_from_repo` does, at the repo's current head:

- **Find** the files: the ``conversation_id`` column (and, of a turn, only its ``messages[].files`` leaf
  column) of every record file of every kind but ``deletions`` (per-shard Parquet ``{kind}/{day}/*.parquet``,
  compacted ``~c`` files, flat-layout JSONL of earlier versions, read in place through ``HfFileSystem``:
  a large Parquet file by the byte ranges of those columns) and of the ``flagged/`` view.
- **Rewrite** each file holding any of the conversations without those rows: the same typed schema
  (``feedback.features``; the ``flagged`` view's own), zstd, row groups of the same size as
  :func:`feedback.hub.layout.parquet_bytes` (a large file a row group at a time: memory holds one row group),
  JSONL as the lines it had. The rewritten file takes a new name (``~e`` and a content hash; a compacted
  file keeps ``~c`` with the new hash; a ``flagged`` file its number with the new hash) and the commit
  deletes the old one: if a compaction or another erasure deleted that file meanwhile, the Hub refuses the
  commit whole (nothing is ever doubled) and the erasure starts again from the new head. A file left with
  no row is deleted.
- **Delete** the uploaded files (``files/<sha256><ext>``) that a turn of the erased conversations carried
  (``messages[].files``) and no other turn of the repo does.
- **Commit** it all in **one commit** (with ``add``: the deletion records the caller adds, e.g. the
  command line's). A change of more than :data:`MAX_COMMIT_FILES` files (the Hub's recommended limit per
  commit) is split into several commits, a file's replacement and its old name's deletion always in the
  same one: every commit is a consistent state holding every other record exactly once, and the erased
  conversations are gone from the head only after the last one.

Deletion records (kind ``deletions``) stay: they hold no text and tell replicas what to erase.

``purge_history``: once the head is erased, ``HfApi.super_squash_history`` makes the ``main`` branch one
commit (every earlier revision, which still holds the conversation, is discarded), and every conversion
branch of the Hub (``refs/convert/parquet``, the dataset viewer's Parquet copy of the data, and
``refs/convert/duckdb``, its search index) is deleted with ``HfApi.delete_branch``; the viewer makes them
again from the new head. What that discards (commits of ``main``, conversion branches and their commits)
is logged first and handed to ``confirm``. Other branches, tags and pull requests are left as they are
and named (they may hold the conversation: deleting someone's branch is not this tool's call). When the
Hub refuses to delete a conversion branch (a 403: on huggingface.co only the dataset viewer's bot and
maybe the repo's owner may), it is named in :attr:`HistoryPurge.refused` with the Hub's reason; the
squash stays done. Not in reach of any API call here: copies the Hub keeps on its own (the CDN's cached
downloads, the dataset viewer's cached first rows and statistics until it re-processes the new head),
forks or duplicates made by anyone, and clones and downloads already made.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError
from loguru import logger

from feedback.hub.client import failure_reason, refused_by_concurrent_change
from feedback.hub.layout import (
    COMPACTED_MARK,
    DEFAULT_ROW_GROUP_ROWS,
    FLAGGED,
    MAX_COMMIT_FILES,
    PARQUET,
    ROW_GROUP_ROWS,
    ordered,
    stem,
)
from feedback.hub.remote import PARALLEL_READS, HubRepo
from feedback.store import FILES_DIR
from schemas.records import RECORD_TYPES, is_valid_id

ERASED_MARK = "~e"
"""Added (with a content hash) to the name of a per-shard file rewritten by an erasure."""
DELETIONS = "deletions"
"""The record kind of deletion records: never rewritten by an erasure."""
ATTEMPTS = 4
"""Times an erasure starts again from a new head when a concurrent change made the Hub refuse it."""
_FILES_LEAF = "messages.list.element.files"
_FLAGGED_NAME = re.compile(r"^flagged-[0-9a-f]{8}-(\d{5})$")


@dataclass
class HistoryPurge:
    """What ``purge_history`` discards (before it runs) or discarded (after).

    Attributes:
        commits: commits of ``main`` squashed into one (each earlier revision is gone).
        converts: the conversion branches (``refs/convert/...``) to delete, and their number of commits.
        deleted: the conversion branches deleted.
        refused: conversion branch -> why the Hub refused to delete it.
        untouched: other branches, tags and pull-request refs, left as they are (they may still hold it).
        squashed: True once ``main`` was squashed.
    """

    commits: int = 0
    converts: dict[str, int] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    untouched: list[str] = field(default_factory=list)
    squashed: bool = False

    def describe(self) -> str:
        """What purging discards, in one paragraph for the terminal and the log."""
        parts = [f"squashes the {self.commits} commits of main into one (every earlier revision is discarded)"]
        for ref, commits in self.converts.items():
            parts.append(f"deletes the branch {ref} ({commits} commits)")
        text = "purging the history " + "; ".join(parts)
        if self.untouched:
            text += "; left as they are (they may still hold it): " + ", ".join(self.untouched)
        return text


@dataclass
class RepoErasure:
    """What :func:`erase_from_repo` did.

    Attributes:
        repo_id: the repo.
        conversation_ids: the conversations erased.
        commits: the commits made (one unless more than :data:`MAX_COMMIT_FILES` files changed).
        rewritten: old path -> new path of each file rewritten without them.
        deleted: record and ``flagged`` files deleted (they held only the erased conversations).
        files: uploaded files deleted (``files/<sha256><ext>``).
        records: rows removed (records, and rows of the ``flagged`` view).
        found: the conversations the repo held a record of, before.
        recorded: the conversations the repo already held a deletion record of, before (``add`` included after).
        purge: the history purge, when asked for.
    """

    repo_id: str
    conversation_ids: frozenset[str]
    commits: list[str] = field(default_factory=list)
    rewritten: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    records: int = 0
    found: frozenset[str] = frozenset()
    recorded: frozenset[str] = frozenset()
    purge: HistoryPurge | None = None

    def summary(self) -> str:
        """One line for the terminal and the log."""
        text = (
            f"{self.records} rows removed from {len(self.rewritten) + len(self.deleted)} files "
            f"({len(self.rewritten)} rewritten, {len(self.deleted)} deleted), {len(self.files)} uploaded files "
            f"deleted, in {len(self.commits)} commits"
        )
        if self.purge is not None:
            text += (
                f"; history: {'main squashed' if self.purge.squashed else 'main not squashed'}"
                f"{', deleted ' + ', '.join(self.purge.deleted) if self.purge.deleted else ''}"
                f"{', refused: ' + ', '.join(self.purge.refused) if self.purge.refused else ''}"
            )
        return text


@dataclass
class _Scan:
    """One file's share of an erasure: its rows of the conversations, the files they and the others carry."""

    kind: str
    path: str
    hits: int = 0
    erased_files: set[str] = field(default_factory=set)
    other_files: set[str] = field(default_factory=set)
    found: set[str] = field(default_factory=set)


def check_ids(conversation_ids: Iterable[str]) -> frozenset[str]:
    """The conversation ids as a set.

    Raises:
        ValueError: for an empty set or an id that is not 8-64 characters of ``[A-Za-z0-9_-]``.
    """
    ids = frozenset(conversation_ids)
    bad = sorted(repr(i)[:80] for i in ids if not is_valid_id(i))
    if bad:
        raise ValueError(f"malformed conversation id(s): {', '.join(bad)} (8-64 characters of A-Z, a-z, 0-9, '_', '-')")
    if not ids:
        raise ValueError("no conversation id given")
    return ids


def _schema(kind: str) -> pa.Schema:
    if kind == FLAGGED:
        from feedback.hub.flagged import FLAGGED_FEATURES

        return FLAGGED_FEATURES.arrow_schema.remove_metadata()
    from feedback.features import record_schema

    return record_schema(kind)


def _row_group_rows(kind: str) -> int:
    return ROW_GROUP_ROWS.get(kind, DEFAULT_ROW_GROUP_ROWS)


def _flat_files(value: object) -> set[str]:
    """The file paths of a ``messages`` column value (a list of messages, each with ``files``)."""
    found: set[str] = set()
    for message in value or ():
        if isinstance(message, dict):
            found.update(f for f in message.get("files") or () if isinstance(f, str))
    return found


def _scan(repo: HubRepo, kind: str, path: str, ids: frozenset[str]) -> _Scan:
    """Read the ``conversation_id`` column of one file (and a turn's ``messages[].files``)."""
    scan = _Scan(kind, path)
    with_files = kind == "turns"
    if path.endswith(".jsonl"):
        for line in repo.cat(path).splitlines():
            record = _parse_line(line)
            if record is None:
                continue
            cid = record.get("conversation_id")
            files = _flat_files(record.get("messages")) if with_files else set()
            if cid in ids:
                scan.hits += 1
                scan.found.add(cid)
                scan.erased_files |= files
            else:
                scan.other_files |= files
        return scan
    handle, spans = repo.parquet(path)
    with_files = with_files and "messages" in handle.schema_arrow.names
    columns = ["conversation_id"] + ([_FILES_LEAF] if with_files else [])
    if spans is not None:  # a large file: only these columns' byte ranges
        spans.prefetch(_leaf_spans(handle, {"conversation_id", f"{_FILES_LEAF}.list.element"}))
    table = handle.read(columns=columns, use_threads=False)
    hit = pc.is_in(table.column("conversation_id"), value_set=pa.array(sorted(ids), pa.string()))
    hit = pc.fill_null(hit, False)
    scan.hits = int(pc.sum(hit).as_py() or 0)
    if scan.hits:
        scan.found = set(pc.unique(table.column("conversation_id").filter(hit)).to_pylist())
    if "messages" in table.column_names:
        messages = table.column("messages")
        if pc.sum(pc.list_value_length(messages)).as_py():
            for is_hit, value in zip(hit.to_pylist(), messages.to_pylist(), strict=True):
                (scan.erased_files if is_hit else scan.other_files).update(_flat_files(value))
    return scan


def _leaf_spans(handle: pq.ParquetFile, leaves: set[str]) -> list[tuple[int, int]]:
    """The byte ranges of the leaf columns ``leaves`` (e.g. ``conversation_id``) in every row group."""
    spans = []
    for group in range(handle.num_row_groups):
        meta = handle.metadata.row_group(group)
        for index in range(meta.num_columns):
            chunk = meta.column(index)
            if chunk.path_in_schema not in leaves:
                continue
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset is not None:
                start = min(start, chunk.dictionary_page_offset)
            spans.append((start, start + chunk.total_compressed_size))
    return sorted(spans)


def _parse_line(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _renamed(path: str, data_hash: str) -> str:
    """The new name of a rewritten file (see the module docstring)."""
    folder, base = path.rsplit("/", 1)
    name = stem(base)
    extension = base[len(name) :]
    if folder == FLAGGED and (match := _FLAGGED_NAME.match(name)):
        return f"{folder}/{FLAGGED}-{data_hash}-{match.group(1)}{extension}"
    root = name.split("~", 1)[0]
    mark = COMPACTED_MARK if COMPACTED_MARK in name else ERASED_MARK
    return f"{folder}/{root}{mark}{data_hash}{extension}"


def _rewrite(repo: HubRepo, scan: _Scan, ids: frozenset[str], folder: Path) -> tuple[Path | None, int, int]:
    """Write ``scan.path`` without the rows of ``ids`` into ``folder``; returns the file (None: no row
    left), rows kept, rows removed."""
    target = folder / f"rewritten-{len(list(folder.iterdir()))}{Path(scan.path).suffix}"
    kept = removed = 0
    if scan.path.endswith(".jsonl"):
        lines = []
        for line in repo.cat(scan.path).splitlines(keepends=True):
            record = _parse_line(line)
            if record is None:  # a line no reader reads: dropped if it names a conversation being erased
                if line.strip() and not any(i.encode() in line for i in ids):
                    lines.append(line)
                elif line.strip():
                    removed += 1
                continue
            if record.get("conversation_id") in ids:
                removed += 1
            else:
                kept += 1
                lines.append(line if line.endswith(b"\n") else line + b"\n")
        if kept:
            target.write_bytes(b"".join(lines))
        return (target if kept else None), kept, removed
    schema = _schema(scan.kind)
    value_set = pa.array(sorted(ids), pa.string())
    with pq.ParquetWriter(target, ordered(schema.empty_table()).schema, compression="zstd") as writer:
        for table in repo.row_groups(scan.path, schema.names):
            table = table.cast(schema)
            keep = pc.invert(pc.fill_null(pc.is_in(table.column("conversation_id"), value_set=value_set), False))
            part = table.filter(keep)
            kept += part.num_rows
            removed += table.num_rows - part.num_rows
            if part.num_rows:
                writer.write_table(ordered(part), row_group_size=_row_group_rows(scan.kind))
    if not kept:
        target.unlink()
        return None, kept, removed
    return target, kept, removed


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:8]


def _tree(repo: HubRepo, folder: str) -> list:
    """The files under ``folder`` at the pinned commit (none when it does not exist)."""
    try:
        return [
            entry
            for entry in repo.api.list_repo_tree(
                repo.repo_id, path_in_repo=folder, recursive=True, repo_type="dataset", revision=repo.sha
            )
            if hasattr(entry, "blob_id")
        ]
    except EntryNotFoundError:
        return []


@dataclass
class _Plan:
    scans: list[_Scan]
    blobs: list[str]
    found: set[str]
    recorded: set[str]


def _plan(repo: HubRepo, ids: frozenset[str]) -> _Plan:
    """Scan the pinned head (see the module docstring): the files holding ``ids``, and the uploaded files
    only they use."""
    targets: list[tuple[str, str]] = []
    for kind in RECORD_TYPES:
        targets += [(kind, path) for path, _, _ in repo.listing(kind)]
    flagged = [entry for entry in _tree(repo, FLAGGED) if entry.path.endswith(PARQUET)]
    repo.sizes.update({entry.path: entry.size for entry in flagged})
    targets += [(FLAGGED, entry.path) for entry in flagged]
    with ThreadPoolExecutor(PARALLEL_READS) as pool:
        scans = list(pool.map(lambda target: _scan(repo, target[0], target[1], ids), targets))
    erased_files: set[str] = set()
    other_files: set[str] = set()
    found: set[str] = set()
    recorded: set[str] = set()
    for scan in scans:
        erased_files |= scan.erased_files
        other_files |= scan.other_files
        (recorded if scan.kind == DELETIONS else found).update(scan.found)
    stored = {entry.path for entry in _tree(repo, FILES_DIR)} if erased_files - other_files else set()
    blobs = sorted(path for path in erased_files - other_files if path in stored)
    hits = [scan for scan in scans if scan.hits and scan.kind != DELETIONS]
    return _Plan(hits, blobs, found, recorded)


def _chunks(groups: list[list], limit: int) -> list[list]:
    """``groups`` of operations packed into commits of at most ``limit`` operations, a group never split."""
    commits: list[list] = []
    for group in groups:
        if not commits or len(commits[-1]) + len(group) > limit:
            commits.append([])
        commits[-1].extend(group)
    return commits


def erase_from_repo(
    repo_id: str,
    conversation_ids: Iterable[str],
    *,
    api: HfApi | None = None,
    token: str | None = None,
    add: Sequence[CommitOperationAdd] = (),
    add_if: Callable[[RepoErasure], Sequence[CommitOperationAdd]] | None = None,
    purge_history: bool = False,
    confirm: Callable[[HistoryPurge], bool] | None = None,
    message: str | None = None,
) -> RepoErasure:
    """Erase conversations from the head of a dataset repo, in one commit (see the module docstring).

    Args:
        repo_id: ``owner/name``.
        conversation_ids: the conversations to erase.
        api: a configured ``HfApi`` (default: one for ``$HF_ENDPOINT`` and the token).
        token: see :func:`~feedback.hub.client.hub_token`; unused when ``api`` is given.
        add: files to add in the (first) commit too, e.g. the deletion records.
        add_if: called with what the scan found (``found``, ``recorded``) before anything is committed;
            returns more files to add (the command line adds a deletion record only for a conversation the
            repo has none of). Raising in it changes nothing in the repo.
        purge_history: then discard the history (see the module docstring).
        confirm: called with what purging discards, just before it; False keeps the history.
        message: the commit message (default: says how many conversations and rows).
    Returns:
        What was done. Nothing held the conversations: no commit (unless ``add``).
    Raises:
        ValueError: for a malformed id or none.
        FileNotFoundError: the repo cannot be read.
        huggingface_hub.errors.HfHubHTTPError: the Hub refused a commit (after :data:`ATTEMPTS` tries when
            it was a concurrent change), or refused to squash the history.
        HubUnreachable, httpx2.HTTPError: the Hub cannot be reached.
    """
    ids = check_ids(conversation_ids)
    repo = HubRepo(repo_id, token=token, api=api)
    result = RepoErasure(repo_id, ids)
    pending_add = list(add)
    first = True
    for attempt in range(ATTEMPTS):
        repo.pin()
        plan = _plan(repo, ids)
        if first:
            result.found, result.recorded = frozenset(plan.found), frozenset(plan.recorded)
            if add_if is not None:
                pending_add += list(add_if(result))
            first = False
        try:
            _commit_plan(repo, plan, ids, pending_add, result, message)
            break
        except HfHubHTTPError as error:
            if not refused_by_concurrent_change(error) or attempt == ATTEMPTS - 1:
                raise
            logger.info(
                "the repo {} changed meanwhile, erasing again from its new head: {}", repo_id, failure_reason(error)
            )
    logger.info("erased {} conversation(s) from {}: {}", len(ids), repo_id, result.summary())
    if purge_history:
        result.purge = purge(repo.api, repo_id, confirm=confirm)
    return result


def _commit_plan(
    repo: HubRepo, plan: _Plan, ids: frozenset[str], pending_add: list, result: RepoErasure, message: str | None
) -> None:
    """Rewrite the plan's files and commit them (several commits past :data:`MAX_COMMIT_FILES` files).
    ``pending_add`` is emptied once committed; ``result`` is filled as commits land."""
    with tempfile.TemporaryDirectory(prefix="erase-") as folder:
        groups: list[list] = []
        changes: list[tuple[str, str | None, int]] = []  # (old path, new path or None, rows removed)
        for scan in plan.scans:
            target, _, removed = _rewrite(repo, scan, ids, Path(folder))
            if target is None:
                groups.append([CommitOperationDelete(path_in_repo=scan.path)])
                changes.append((scan.path, None, removed))
            else:
                new_path = _renamed(scan.path, _digest(target))
                groups.append(
                    [
                        CommitOperationAdd(path_in_repo=new_path, path_or_fileobj=str(target)),
                        CommitOperationDelete(path_in_repo=scan.path),
                    ]
                )
                changes.append((scan.path, new_path, removed))
        groups += [[CommitOperationDelete(path_in_repo=path)] for path in plan.blobs]
        if pending_add:
            groups.insert(0, list(pending_add))
        if not groups:
            return
        chunks = _chunks(groups, MAX_COMMIT_FILES)
        rows = sum(removed for _, _, removed in changes)
        text = message or (
            f"Erase {len(ids)} conversation(s): {rows} rows from {len(plan.scans)} files, "
            f"{len(plan.blobs)} uploaded files"
        )
        for number, chunk in enumerate(chunks, start=1):
            summary = text if len(chunks) == 1 else f"{text} (part {number} of {len(chunks)})"
            info = repo.api.create_commit(repo.repo_id, repo_type="dataset", operations=chunk, commit_message=summary)
            result.commits.append(info.oid)
            if pending_add and number == 1:
                pending_add.clear()
            done = {op.path_in_repo for op in chunk if isinstance(op, CommitOperationDelete)}
            for old, new, removed in changes:
                if old in done:
                    if new is None:
                        result.deleted.append(old)
                    else:
                        result.rewritten[old] = new
                    result.records += removed
            result.files += [path for path in plan.blobs if path in done]


def purge_plan(api: HfApi, repo_id: str) -> HistoryPurge:
    """What :func:`purge` would discard now: the commits of ``main``, the conversion branches (and their
    commits), and the other refs it leaves.

    Raises:
        huggingface_hub.errors.HfHubHTTPError: the Hub refuses to list them.
    """
    plan = HistoryPurge(commits=len(api.list_repo_commits(repo_id, repo_type="dataset")))
    refs = api.list_repo_refs(repo_id, repo_type="dataset", include_pull_requests=True)
    for ref in refs.converts:
        plan.converts[ref.ref] = len(api.list_repo_commits(repo_id, repo_type="dataset", revision=ref.ref))
    plan.untouched = (
        [f"branch {ref.name}" for ref in refs.branches if ref.name != "main"]
        + [f"tag {ref.name}" for ref in refs.tags]
        + [f"pull request {ref.ref}" for ref in refs.pull_requests or ()]
    )
    return plan


def purge(api: HfApi, repo_id: str, *, confirm: Callable[[HistoryPurge], bool] | None = None) -> HistoryPurge:
    """Discard the history of a repo: log what goes (:func:`purge_plan`), ask ``confirm``, squash ``main``
    into one commit (``HfApi.super_squash_history``), delete every conversion branch
    (``HfApi.delete_branch``). A conversion branch the Hub refuses to delete is named in
    :attr:`HistoryPurge.refused` (and logged as a warning); the squash is not undone.

    Raises:
        huggingface_hub.errors.HfHubHTTPError: the Hub refuses to list the history or to squash it.
    """
    plan = purge_plan(api, repo_id)
    logger.warning("{}: {}", repo_id, plan.describe())
    if confirm is not None and not confirm(plan):
        logger.info("history of {} kept (not confirmed)", repo_id)
        return plan
    api.super_squash_history(
        repo_id, branch="main", repo_type="dataset", commit_message="Squash the history (conversations erased)"
    )
    plan.squashed = True
    for ref in plan.converts:
        try:
            api.delete_branch(repo_id, branch=ref, repo_type="dataset")
            plan.deleted.append(ref)
        except (HfHubHTTPError, RepositoryNotFoundError) as error:
            plan.refused[ref] = failure_reason(error)
            logger.warning(
                "the Hub refused to delete {} of {}: {}; its commits may still hold the erased conversations",
                ref,
                repo_id,
                plan.refused[ref],
            )
    return plan


def deletion_operation(records: Sequence, *, writer: str) -> CommitOperationAdd:
    """Deletion records as one Parquet file of the repo's ``deletions/{day}/`` partition, named as a shard
    of a writer ``writer`` (12 hex characters) started now would be."""
    from datetime import UTC, datetime

    from feedback.export.read import records_to_jsonl
    from feedback.hub.layout import repo_path, shard_parquet

    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{writer}-0001.jsonl"
    data, _ = shard_parquet(records_to_jsonl(list(records)), DELETIONS, name)
    return CommitOperationAdd(path_in_repo=repo_path(DELETIONS, name), path_or_fileobj=data)
