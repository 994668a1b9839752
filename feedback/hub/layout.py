"""Where records live in a dataset repo, and in what form.

A local data dir keeps its append-only JSONL shards (``turns/<shard>.jsonl``: the write path, never
rewritten). In the repo every record kind is partitioned by the UTC day its shard was started, and
every file is Parquet::

    turns/2026-12-02/20261202T071500123456Z-3f2a9c1b7d4e-0001.parquet    one pushed shard
    turns/2026-11-30/20261130T000102000000Z-3f2a9c1b7d4e-0001~c.parquet  a compacted day (many shards)
    flagged/flagged-00000.parquet                                        the review view (compaction)

Why Parquet from the first push and not JSONL then Parquet: ``datasets`` picks one builder (json or
parquet) for *all* configs of a repo from the first config's files, so a repo holding JSONL beside
Parquet, or a JSONL ``turns`` config beside a Parquet ``flagged`` one, cannot be loaded. Each pushed
shard is closed (the sync rotates shards before its scan), so it is converted once, typed by
``feedback.features`` (never guessed), zstd-compressed, in small row groups (the dataset viewer reads
one row group per page), with the columns the review queue reads first, so a reader fetching only
them makes one range request per row group.

A file's name keeps its shard's name, so paths sort in file order (the order that breaks ties between
equal timestamps); a compacted file takes the name of the first shard in it plus ``~c``.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.records import RECORD_TYPES

PARQUET = ".parquet"
MAX_COMMIT_FILES = 100
"""No commit carries more files (added and deleted together) than this: the Hub's recommendation. The
sync splits a larger push, compaction merges at most one less, an erasure splits a larger change."""
UNDATED = "undated"
"""The partition of a shard whose name does not start with its UTC start time."""
COMPACTED_MARK = "~c"
"""Added to the name of a compacted file (after the name of the first shard it holds)."""
FLAGGED = "flagged"
"""The folder (and config) of the review view written by compaction."""
ROW_GROUP_ROWS = {"turns": 1_000, FLAGGED: 1_000}
"""Rows per Parquet row group: small for the big rows (the dataset viewer loads a row group per page)."""
DEFAULT_ROW_GROUP_ROWS = 20_000
FIRST_COLUMNS = ("schema_version", "timestamp", "conversation_id", "message_id", "turn_index", "model")
"""Columns written first (when present): the review index reads only these of a turn."""
_STAMP = re.compile(r"^(\d{4})(\d{2})(\d{2})T\d{6}")


def partition_of(shard_name: str) -> str:
    """The UTC day (``YYYY-MM-DD``) a shard was started, from the start of its name."""
    match = _STAMP.match(shard_name)
    if not match:
        return UNDATED
    try:
        return date(*map(int, match.groups())).isoformat()
    except ValueError:
        return UNDATED


def stem(name: str) -> str:
    """A file name without its folder and extension."""
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def repo_path(kind: str, shard_name: str) -> str:
    """Where a shard of ``kind`` goes in the repo: ``{kind}/{day}/{shard stem}.parquet``."""
    return f"{kind}/{partition_of(shard_name)}/{stem(shard_name)}{PARQUET}"


def is_record_file(path: str) -> bool:
    """True for a record file of the repo: ``{kind}/{day}/*.parquet``, or a JSONL shard of the flat layout
    of earlier versions (``{kind}/*.jsonl``), which readers still read and compaction converts."""
    parts = path.split("/")
    if not parts or parts[0] not in RECORD_TYPES:
        return False
    return (len(parts) == 3 and parts[2].endswith(PARQUET)) or (len(parts) == 2 and parts[1].endswith(".jsonl"))


def partition_day(path: str) -> date | None:
    """The day of a record file's partition (flat-layout JSONL: from its name); None when undated."""
    parts = path.split("/")
    day = parts[1] if len(parts) == 3 else partition_of(parts[-1])
    try:
        return date.fromisoformat(day)
    except ValueError:
        return None


def ordered(table: pa.Table) -> pa.Table:
    """``table`` with :data:`FIRST_COLUMNS` first (readers select columns by name)."""
    first = [name for name in FIRST_COLUMNS if name in table.column_names]
    return table.select(first + [name for name in table.column_names if name not in first])


def parquet_bytes(table: pa.Table, kind: str) -> bytes:
    """``table`` as a Parquet file: zstd, small row groups, statistics (see the module docstring)."""
    sink = io.BytesIO()
    pq.write_table(
        ordered(table),
        sink,
        compression="zstd",
        row_group_size=ROW_GROUP_ROWS.get(kind, DEFAULT_ROW_GROUP_ROWS),
        write_statistics=True,
    )
    return sink.getvalue()


def shard_parquet(data: bytes, kind: str, origin: str) -> tuple[bytes, int]:
    """A JSONL shard's complete lines as Parquet typed by ``feedback.features`` (bad lines skipped and
    logged, as every reader does); returns the file and its number of records."""
    from feedback.export.read import parse_jsonl
    from feedback.features import record_schema

    table, _ = parse_jsonl(data, record_schema(kind), origin=origin)
    return parquet_bytes(table, kind), table.num_rows


def utc_today() -> date:
    """Today in UTC."""
    return datetime.now(UTC).date()
