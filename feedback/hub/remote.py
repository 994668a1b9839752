"""A dataset repo read in place through ``huggingface_hub.HfFileSystem``: only the files and columns a
reader needs, range requests into Parquet files, nothing downloaded whole (except JSONL shards of the
flat layout of earlier versions, which cannot be read in part).

- :class:`HubSource`: the review index's source (``review``/``stats --source owner/name``): the rule
  columns of every record file, and whole records fetched back by row for the rows a page shows.
- :class:`HubRecordFiles`: the export's file list and reader (``export --source owner/name``):
  :func:`remote_stub` writes a small folder standing for the repo, which
  ``feedback.export.read.read_kind`` recognises (:func:`record_files_for`) and reads through this.

Every read of one refresh or one export is pinned to the commit the files were listed at, so a
compaction committing meanwhile (deleting the files it merged) never makes a reader miss or double
a record.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import httpx2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from huggingface_hub import HfApi, HfFileSystem
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
from loguru import logger

from feedback.hub.client import hub_api, hub_endpoint, hub_token, use_hub_timeout
from feedback.hub.layout import PARQUET, is_record_file
from feedback.review.sources import (
    FileVersion,
    _located,
    jsonl_rows,
    parse_record,
    rule_schema,
)
from schemas.records import RECORD_TYPES, Record

STUB_FILE = ".hf-source.json"
"""The file that makes a folder stand for a dataset repo (see :func:`remote_stub`)."""
WHOLE_FILE_BYTES = 4 << 20
"""A Parquet file up to this size is fetched in one request and read in memory; a larger one by ranges
(its footer, then the column chunks asked for)."""
PARALLEL_READS = 8
"""Requests in flight at once: a remote read is bound by the network's latency, not the CPU."""
REMOTE_FOLDER = "chat-feedback-remote"
"""The folder (in the temporary directory) that holds the stubs."""


class HubRepo:
    """A dataset repo at one commit: its record files and reads of them through ``HfFileSystem``.

    Args:
        repo_id: ``owner/name``.
        revision: a branch or commit (default ``main``); :meth:`pin` resolves it to a commit.
        token: see :func:`~feedback.hub.client.hub_token`.
        api: a configured ``HfApi`` (default: one for ``$HF_ENDPOINT``).
    Raises:
        FileNotFoundError: (from :meth:`pin`) the Hub has no such repo or refuses the token.
    """

    def __init__(
        self, repo_id: str, *, revision: str | None = None, token: str | None = None, api: HfApi | None = None
    ) -> None:
        self.repo_id, self.revision = repo_id, revision or "main"
        self.token = hub_token(token if token or api is None else api.token)
        self.api = api or hub_api(self.token)
        self.sha: str | None = None
        self.sizes: dict[str, int] = {}

    @cached_property
    def fs(self) -> HfFileSystem:
        """The file system (``$HF_ENDPOINT``, the token); listings are never cached across pins."""
        return HfFileSystem(endpoint=self.api.endpoint or hub_endpoint(), token=self.token, skip_instance_cache=True)

    def pin(self) -> str:
        """Resolve the revision to its current commit; later reads are at that commit."""
        try:
            self.sha = self.api.repo_info(self.repo_id, repo_type="dataset", revision=self.revision).sha
        except (HfHubHTTPError, OSError, httpx2.HTTPError) as error:
            raise FileNotFoundError(
                f"SOURCE {self.repo_id!r} is not a local data dir, and reading it as a Hub dataset repo failed: {error}"
            ) from error
        return self.sha

    def listing(self, kind: str) -> list[tuple[str, str, int]]:
        """``(path, blob id, size)`` of the record files of ``kind`` at the pinned commit, sorted by path."""
        if self.sha is None:
            self.pin()
        try:
            entries = self.api.list_repo_tree(
                self.repo_id, path_in_repo=kind, recursive=True, repo_type="dataset", revision=self.sha
            )
            found = [(e.path, e.blob_id, e.size) for e in entries if hasattr(e, "blob_id") and is_record_file(e.path)]
        except EntryNotFoundError:
            return []
        self.sizes.update({path: size for path, _, size in found})
        return sorted(found)

    def url(self, path: str) -> str:
        """The ``HfFileSystem`` path of a repo file at the pinned commit."""
        return f"datasets/{self.repo_id}@{self.sha}/{path}"

    def open(self, path: str):
        """A repo file opened for range reads (one request per read; its size from the listing, so no
        look-up first)."""
        return self.fs.open(self.url(path), "rb", block_size=1 << 20, cache_type="none", size=self.sizes.get(path))

    def cat(self, path: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes of a repo file (a range of them), in one request."""
        with self.open(path) as handle:
            handle.seek(start or 0)
            return handle.read(-1 if end is None else end - (start or 0))

    def parquet(self, path: str) -> tuple[pq.ParquetFile, SpanFile | None]:
        """A Parquet file of the repo: a small one fetched whole; a large one with its footer fetched and
        the rest read by spans (see :class:`SpanFile`; None for a file fetched whole)."""
        size = self.sizes.get(path)
        if size is not None and size <= WHOLE_FILE_BYTES:
            return pq.ParquetFile(pa.BufferReader(self.cat(path))), None
        if size is None:
            size = self.fs.info(self.url(path))["size"]
        spans = SpanFile(lambda start, end: self.cat(path, start, end), size)
        spans.prefetch([(max(0, size - FOOTER_BYTES), size)])
        return pq.ParquetFile(spans), spans

    def read_columns(self, path: str, columns: list[str]) -> pa.Table:
        """Only ``columns`` of a Parquet file (missing ones null): one request per row group (the columns
        the review index reads are written first, side by side)."""
        handle, spans = self.parquet(path)
        present = [c for c in columns if c in handle.schema_arrow.names]
        if spans is not None:
            spans.prefetch(_column_spans(handle, range(handle.num_row_groups), present))
        table = handle.read(columns=present, use_threads=False) if present else pa.table({})
        rows = handle.metadata.num_rows
        for name in columns:
            if name not in present:
                table = table.append_column(name, pa.nulls(rows))
        return table.select(columns)

    def row_groups(self, path: str, columns: list[str]) -> Iterator[pa.Table]:
        """``columns`` of a Parquet file one row group at a time (memory holds one row group)."""
        handle, spans = self.parquet(path)
        present = [c for c in columns if c in handle.schema_arrow.names]
        for group in range(handle.num_row_groups):
            if spans is not None:
                spans.spans = spans.spans[:1]  # the footer; the previous row group's bytes are let go
                spans.prefetch(_column_spans(handle, [group], present))
            table = handle.read_row_group(group, columns=present, use_threads=False)
            for name in columns:
                if name not in present:
                    table = table.append_column(name, pa.nulls(table.num_rows))
            yield table.select(columns)

    def rows(self, path: str, numbers: Sequence[int]) -> list[dict]:
        """Whole rows of a Parquet file by row number: one request per row group holding any of them."""
        handle, spans = self.parquet(path)
        sizes = [handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)]
        starts = np.cumsum([0, *sizes])
        group_of = {n: int(np.searchsorted(starts, n, side="right") - 1) for n in numbers}
        groups = sorted(set(group_of.values()))
        if spans is not None:
            spans.prefetch(_column_spans(handle, groups, None))
        read_at = dict(zip(groups, np.cumsum([0, *(sizes[g] for g in groups)]).tolist(), strict=False))
        table = handle.read_row_groups(groups, use_threads=False)
        picks = [read_at[group_of[n]] + n - int(starts[group_of[n]]) for n in numbers]
        return table.take(pa.array(picks, pa.int64())).to_pylist()


FOOTER_BYTES = 256 << 10
"""Bytes fetched from the end of a large Parquet file at once: its footer (metadata) in one request."""


def _column_spans(handle: pq.ParquetFile, groups: Iterable[int], columns: list[str] | None) -> list[tuple[int, int]]:
    """The byte ranges of ``columns`` (None: all) in row groups ``groups``, adjacent ones merged."""
    names = None if columns is None else set(columns)
    spans = []
    for group in groups:
        meta = handle.metadata.row_group(group)
        for index in range(meta.num_columns):
            chunk = meta.column(index)
            if names is not None and chunk.path_in_schema.split(".", 1)[0] not in names:
                continue
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset is not None:
                start = min(start, chunk.dictionary_page_offset)
            spans.append((start, start + chunk.total_compressed_size))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 4096:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


class SpanFile(io.RawIOBase):
    """A read-only file of ``size`` bytes for pyarrow, served from byte spans fetched ahead (in parallel,
    one request each); a read outside them is fetched on its own."""

    def __init__(self, fetch: Callable[[int, int], bytes], size: int) -> None:
        super().__init__()
        self.fetch, self.size, self.position = fetch, size, 0
        self.spans: list[tuple[int, bytes]] = []

    def prefetch(self, ranges: Sequence[tuple[int, int]]) -> None:
        """Fetch ``(start, end)`` byte ranges, in parallel."""
        wanted = [(start, end) for start, end in ranges if end > start]
        with ThreadPoolExecutor(min(PARALLEL_READS, max(1, len(wanted)))) as pool:
            self.spans += list(zip((s for s, _ in wanted), pool.map(lambda r: self.fetch(*r), wanted), strict=True))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        start, self.position = self.position, end
        if end <= start:
            return b""
        for offset, data in self.spans:
            if offset <= start and end <= offset + len(data):
                return data[start - offset : end - offset]
        data = self.fetch(start, end)
        self.spans.append((start, data))
        return data


class HubSource:
    """A dataset repo as a source of the review index (see ``feedback.review.sources``).

    Args:
        repo: the repo.
        prefix: put before every path (to tell its files from a local source's in a combined one).
    """

    parallel = PARALLEL_READS
    """Files read at once (network latency, not CPU, bounds a remote read)."""

    def __init__(self, repo: HubRepo, prefix: str = "") -> None:
        self.repo, self.prefix = repo, prefix
        self._listings: dict[str, list[tuple[str, str, int]]] = {}

    def snapshot(self) -> None:
        """Pin the repo's current commit and list every record kind's files at it (the listings at once):
        one refresh reads one consistent state."""
        self.repo.pin()
        with ThreadPoolExecutor(len(RECORD_TYPES)) as pool:
            self._listings = dict(zip(RECORD_TYPES, pool.map(self.repo.listing, RECORD_TYPES), strict=True))

    def files(self, kind: str, known: dict[str, FileVersion]) -> list[FileVersion]:
        """The record files of ``kind`` (a file's version is its blob id: a new content is read again)."""
        listing = self._listings.pop(kind, None)
        if listing is None:
            listing = self.repo.listing(kind)
        return [FileVersion(self.prefix + path, blob) for path, blob, _ in listing]

    def read(self, kind: str, path: str) -> pa.Table:
        """The rule columns of one file and each row's locator (row number; JSONL: byte range)."""
        inner = path[len(self.prefix) :]
        if not inner.endswith(PARQUET):
            return jsonl_rows(self.repo.cat(inner), kind, path)
        schema = rule_schema(kind)
        table = self.repo.read_columns(inner, schema.names).cast(schema)
        count = table.num_rows
        return _located(table, path, range(count), range(count), [0] * count)

    def fetch(self, kind: str, locators: Sequence[tuple[str, int, int]]) -> list[Record | None]:
        """Whole records: Parquet rows read by row group, JSONL lines by byte range."""
        out: list[Record | None] = [None] * len(locators)
        by_file: dict[str, list[int]] = defaultdict(list)
        for position, (path, _, _) in enumerate(locators):
            by_file[path].append(position)

        def read(path: str) -> list | None:
            inner, positions = path[len(self.prefix) :], by_file[path]
            try:
                if inner.endswith(PARQUET):
                    return self.repo.rows(inner, [locators[p][1] for p in positions])
                return [self.repo.cat(inner, locators[p][1], locators[p][1] + locators[p][2]) for p in positions]
            except (OSError, HfHubHTTPError) as error:
                logger.warning("cannot read {} of {}: {}", path, self.repo.repo_id, error)
                return None

        with ThreadPoolExecutor(PARALLEL_READS) as pool:
            for path, rows in zip(by_file, pool.map(read, by_file), strict=True):
                for position, row in zip(by_file[path], rows or [None] * len(by_file[path]), strict=True):
                    if row is not None:
                        out[position] = parse_record(kind, row, f"{self.repo.repo_id}/{path}")
        return out


class HubRecordFiles:
    """The export's view of a repo (``feedback.export.read.read_kind``): record files and a reader of
    only the columns asked for."""

    def __init__(self, repo: HubRepo) -> None:
        self.repo = repo
        self._sizes: dict[str, int] = {}

    def paths(self, kind: str) -> list[str]:
        """The record files of ``kind``, in file order."""
        listed = self.repo.listing(kind)
        self._sizes.update({path: size for path, _, size in listed})
        return [path for path, _, _ in listed]

    def size(self, path: str) -> int:
        """A file's size in bytes."""
        return self._sizes.get(path, 0)

    def read(self, path: str, schema: pa.Schema) -> tuple[pa.Table, object]:
        """One file as a table of ``schema`` and its read counts (``feedback.export.read.ReadCounts``)."""
        from feedback.export.read import ReadCounts, parse_jsonl

        if not path.endswith(PARQUET):
            table, counts = parse_jsonl(self.repo.cat(path), schema, origin=f"{self.repo.repo_id}/{path}")
        else:
            table = self.repo.read_columns(path, schema.names).cast(schema)
            counts = ReadCounts(records=table.num_rows)
        counts.files, counts.bytes = 1, self.size(path)
        return table, counts


def remote_stub(repo: HubRepo) -> Path:
    """A folder standing for ``repo`` at its pinned commit (in the temporary directory:
    ``chat-feedback-remote-<uid>/<owner>__<name>@<commit>``, holding :data:`STUB_FILE` and empty record
    folders): readers given it read the repo in place (:func:`record_files_for`)."""
    sha = repo.sha or repo.pin()
    folder = Path(tempfile.gettempdir()) / f"{REMOTE_FOLDER}-{os.getuid()}" / f"{repo.repo_id.replace('/', '__')}@{sha}"
    folder.mkdir(parents=True, exist_ok=True)
    for kind in RECORD_TYPES:
        (folder / kind).mkdir(exist_ok=True)  # a data dir's shape: readers that list it find no local shard
    stub = {"repo_id": repo.repo_id, "revision": sha, "endpoint": repo.api.endpoint}
    tmp = folder / f".{STUB_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(stub), encoding="utf-8")
    os.replace(tmp, folder / STUB_FILE)
    return folder


def record_files_for(data_dir: str | os.PathLike[str]) -> HubRecordFiles | None:
    """The repo a folder stands for (see :func:`remote_stub`), or None for a plain data dir."""
    stub = Path(data_dir) / STUB_FILE
    if not stub.is_file():
        return None
    values = json.loads(stub.read_text(encoding="utf-8"))
    use_hub_timeout(None)
    repo = HubRepo(values["repo_id"], revision=values["revision"], api=hub_api(hub_token(None)))
    repo.sha = values["revision"]
    return HubRecordFiles(repo)
