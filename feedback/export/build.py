"""Records in, an :class:`Export` out: the one pipeline behind the CLI, the notebook API and the tests.

1. ratings, flags, reviews and deletions are read whole (they are small) and judged by ``feedback.rules``:
   latest rating, flag summary, latest review, deleted conversations (every record of one is left out);
2. turns are read shard by shard, two shards at a time; each shard keeps only its candidate
   replies, and (a format with one row per reply: SFT, KTO, flags) turns them into serialized
   rows right away;
3. (a paired format: DPO) the candidate replies of all shards are paired, then turned into rows;
4. rows go through one :class:`~feedback.export.rows.RowWriter`, in log order: copies of a reply
   and identical rows are dropped (the kept row counts the conversations that gave it), each row
   goes to its split.

Records come either from a data dir (``{data_dir}/turns|ratings|flags|reviews|deletions/*.jsonl``) or from
Python objects; both are parsed by the same explicit-schema JSON reader. What differs between formats is
in their specs (``feedback.export.formats``); nothing here names a format.
"""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.json as paj
from pydantic import BaseModel

from feedback.export.formats import ExportFormat, get_format
from feedback.export.options import ExportOptions
from feedback.export.read import ReadCounts, parse_jsonl, read_kind, records_to_jsonl
from feedback.export.replies import TURN_COLUMNS, dedup_statuses, select_replies
from feedback.export.rows import SPLITS, CandidateStore, RowBatch, RowWriter, Sink, pair_rows, reply_rows, with_count
from feedback.export.stats import build_stats
from feedback.features import record_schema
from feedback.rules import DELETION_COLUMNS, FLAG_COLUMNS, RATING_COLUMNS, REVIEW_COLUMNS, Verdicts, judge

if TYPE_CHECKING:
    from datasets import DatasetDict, Features

Records = Iterable[BaseModel | dict[str, Any]]
Reader = Callable[[str, list[str], Callable[[pa.Table], Any], Callable[[Any], None]], ReadCounts]
"""``read(kind, columns, transform, consume)``: see ``feedback.export.read.read_kind``."""


@dataclass
class Export:
    """The result of an export: its stats and where its rows are.

    Rows are kept in memory (``lines``) when the export had no sink, or read back from ``files``
    (``split -> path`` of JSONL files, set by ``run_export``; a split with no rows has no file, and
    an export with no rows no files: ``{}``).

    Attributes:
        format: the format's name, one of ``feedback.export.FORMATS``.
        options: what it was asked for.
        stats: see ``feedback.export.stats``.
        row_counts: per split, each row's ``count`` (distinct conversations that gave it), in order.
        counts_pending: the lines a sink received lack the ``count`` column they should have
            (``include_ids``): the count of a row is known only once every row was seen, so whoever
            wrote them adds it afterwards (``feedback.export.rows.with_count``, as ``run_export`` does).
    """

    format: str
    options: ExportOptions
    stats: dict[str, Any]
    lines: list[tuple[str, bytes]] | None = None
    files: dict[str, Path] | None = None
    row_counts: dict[str, list[int]] = field(default_factory=dict)
    counts_pending: bool = False

    def _lines(self, split: str | None) -> list[bytes]:
        if self.lines is not None:
            return [line for name, line in self.lines if split in (None, name)]
        if self.files is None:
            raise ValueError("this export's rows went to its sink; read them where the sink put them")
        splits = SPLITS if split is None else (split,)
        return [
            line for name in splits if name in self.files for line in self.files[name].read_bytes().splitlines() if line
        ]

    def rows(self, split: str | None = None) -> list[dict[str, Any]]:
        """The rows of ``split`` (None: all, in order) as JSON values, exactly as the JSONL files hold them."""
        return [orjson.loads(line) for line in self._lines(split)]

    def table(self, split: str | None = None) -> pa.Table:
        """The rows of ``split`` (None: all) as an Arrow table typed by ``feedback.features``."""
        schema = self._features().arrow_schema
        lines = self._lines(split)
        if not lines:
            return schema.empty_table()
        data = pa.py_buffer(b"\n".join(lines) + b"\n")
        table = paj.read_json(pa.BufferReader(data), parse_options=paj.ParseOptions(explicit_schema=schema))
        return table.select(schema.names).cast(schema)

    def _features(self) -> Features:
        return get_format(self.format, self.options).row_features(include_ids=self.options.include_ids)

    def to_dataset_dict(self) -> DatasetDict:
        """``train`` and ``test`` as a ``datasets.DatasetDict`` with the format's features."""
        from datasets import Dataset, DatasetDict, DatasetInfo, NamedSplit
        from datasets.table import InMemoryTable

        info = DatasetInfo(features=self._features())
        return DatasetDict(
            {
                split: Dataset(InMemoryTable(self.table(split)), info=info.copy(), split=NamedSplit(split))
                for split in SPLITS
            }
        )


def export_data_dir(
    fmt: str,
    data_dir: str | os.PathLike[str],
    options: ExportOptions | None = None,
    *,
    sink: Sink | None = None,
    progress: bool = False,
) -> Export:
    """Export the records of a local data dir.

    Args:
        fmt: one of ``feedback.export.FORMATS``.
        data_dir: a folder with ``turns/``, ``ratings/``, ``flags/``, ``reviews/`` and ``deletions/`` JSONL
            shards (any may be missing).
        options: see :class:`ExportOptions` (default: all defaults).
        sink: called with ``(split, json_lines)`` as rows are kept, in order (e.g. to write
            files); without one, the rows stay in the returned export. With ``include_ids`` the
            lines lack ``count`` (see ``Export.counts_pending``).
        progress: show progress bars.

    Raises:
        ValueError: for an unknown format.
        FileNotFoundError: when ``data_dir`` is not a directory.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data dir {root} does not exist")

    def read(
        kind: str, columns: list[str], transform: Callable[[pa.Table], Any], consume: Callable[[Any], None]
    ) -> ReadCounts:
        return read_kind(root, kind, columns, transform, consume, progress=progress)

    return _export(fmt, read, options or ExportOptions(), sink=sink, progress=progress)


def export_records(
    fmt: str,
    turns: Records,
    ratings: Records = (),
    flags: Records = (),
    options: ExportOptions | None = None,
    reviews: Records = (),
    deletions: Records = (),
) -> Export:
    """Export records given as objects: ``schemas.records`` models or dicts of their JSON form.

    Invalid records are skipped and counted (``stats["records"][kind]["bad_lines"]``), as in files.
    Every record of a conversation a deletion record names is left out (``feedback.rules``).
    """
    given = {"turns": turns, "ratings": ratings, "flags": flags, "reviews": reviews, "deletions": deletions}

    def read(
        kind: str, columns: list[str], transform: Callable[[pa.Table], Any], consume: Callable[[Any], None]
    ) -> ReadCounts:
        table, counts = parse_jsonl(records_to_jsonl(given[kind]), record_schema(kind, columns))
        consume(transform(table))
        return counts

    return _export(fmt, read, options or ExportOptions(), sink=None, progress=False)


def _export(fmt: str, read: Reader, options: ExportOptions, *, sink: Sink | None, progress: bool) -> Export:
    spec = get_format(fmt, options)
    collecting = gc.isenabled()
    gc.disable()  # rows hold no cycles; collector passes over millions of live objects cost more than the rows
    try:
        ratings: list[pa.Table] = [record_schema("ratings", RATING_COLUMNS).empty_table()]
        flags: list[pa.Table] = [record_schema("flags", FLAG_COLUMNS).empty_table()]
        reviews: list[pa.Table] = [record_schema("reviews", REVIEW_COLUMNS).empty_table()]
        deletions: list[pa.Table] = [record_schema("deletions", DELETION_COLUMNS).empty_table()]
        deletion_reads = read("deletions", DELETION_COLUMNS, lambda table: table, deletions.append)
        rating_reads = read("ratings", RATING_COLUMNS, lambda table: table, ratings.append)
        flag_reads = read("flags", FLAG_COLUMNS, lambda table: table, flags.append)
        read("reviews", REVIEW_COLUMNS, lambda table: table, reviews.append)
        verdicts = judge(
            pa.concat_tables(ratings),
            pa.concat_tables(flags),
            pa.concat_tables(reviews),
            pa.concat_tables(deletions),
            progress=progress,
        )
        del ratings, flags, reviews, deletions
        writer = RowWriter(sink)
        statuses, (duplicates, deleted_turns), pairing, turn_reads = _turn_rows(
            spec, read, verdicts, options, writer, progress
        )
    finally:
        if collecting:
            gc.enable()
    row_counts = writer.row_counts()
    stats = build_stats(
        spec,
        options,
        reads={"turns": turn_reads, "ratings": rating_reads, "flags": flag_reads, "deletions": deletion_reads},
        verdicts=verdicts,
        statuses=statuses,
        turn_duplicates=duplicates,
        deleted_turns=deleted_turns,
        writer=writer,
        pairing=pairing,
        row_counts=row_counts,
    )
    with_counts = options.include_ids and spec.counts_agreement
    lines = writer.collected if sink is None else None
    if lines is not None and with_counts:
        lines = _with_counts(lines, row_counts)
    return Export(
        format=fmt,
        options=options,
        stats=stats,
        lines=lines,
        row_counts=row_counts,
        counts_pending=with_counts and sink is not None,
    )


def _with_counts(lines: list[tuple[str, bytes]], row_counts: dict[str, list[int]]) -> list[tuple[str, bytes]]:
    """``(split, line)`` pairs with each line's ``count`` added (the counts of a split in its lines' order)."""
    counts = {split: iter(values) for split, values in row_counts.items()}
    return [(split, with_count(line, next(counts[split]))) for split, line in lines]


def _turn_rows(
    spec: ExportFormat, read: Reader, verdicts: Verdicts, options: ExportOptions, writer: RowWriter, progress: bool
) -> tuple[pa.Table, tuple[int, int], Counter, ReadCounts]:
    """Read the turns and hand their rows to ``writer``. Returns statuses, (duplicates, turn records of
    deleted conversations), pairing counts, reads."""
    nothing = select_replies(record_schema("turns", TURN_COLUMNS).empty_table(), verdicts, spec, options)
    statuses: list[pa.Table] = [nothing[0]]
    if spec.paired:
        with CandidateStore(cross_conversation=options.cross_conversation) as candidates:  # text in a temp file
            candidates.add(nothing[1])

            def keep(shard: tuple[pa.Table, pa.Table]) -> None:
                statuses.append(shard[0])
                candidates.add(shard[1])

            reads = read("turns", TURN_COLUMNS, lambda table: select_replies(table, verdicts, spec, options), keep)
            status, duplicates, deleted = dedup_statuses(statuses)
            batches, pairing = pair_rows(candidates, spec, options, progress=progress)
        for batch in batches:
            writer.add(batch)
        return status, (duplicates, deleted), pairing, reads

    def shard_rows(table: pa.Table) -> tuple[pa.Table, RowBatch]:
        shard_statuses, shard_candidates = select_replies(table, verdicts, spec, options)
        return shard_statuses, reply_rows(shard_candidates, verdicts, spec, options)

    def write(shard: tuple[pa.Table, RowBatch]) -> None:
        statuses.append(shard[0])
        writer.add(shard[1])

    reads = read("turns", TURN_COLUMNS, shard_rows, write)
    status, duplicates, deleted = dedup_statuses(statuses)
    return status, (duplicates, deleted), Counter(), reads


def _rows(fmt: str, turns: Records, ratings: Records, flags: Records, options: dict[str, Any]) -> list[dict[str, Any]]:
    reviews, deletions = options.pop("reviews", ()), options.pop("deletions", ())
    return export_records(
        fmt, turns, ratings, flags, ExportOptions(**options), reviews=reviews, deletions=deletions
    ).rows()


def sft_rows(turns: Records, ratings: Records = (), flags: Records = (), **options: Any) -> list[dict[str, Any]]:
    """TRL conversational prompt-completion rows of liked replies and reviewers' corrections.

    >>> sft_rows(turns, ratings)  # doctest: +SKIP
    [{"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello!"}]}]

    ``options`` are :class:`ExportOptions` fields (e.g. ``include_unrated=True``; ``messages=True``
    for TRL's language-modeling rows ``{"messages": [...prompt, {"role": "assistant", ...}]}``), plus
    ``reviews=[...]`` (review records) and ``deletions=[...]`` (deletion records: their conversations are
    left out); every split's rows are returned, in order.
    """
    return _rows("sft", turns, ratings, flags, options)


def dpo_rows(turns: Records, ratings: Records = (), flags: Records = (), **options: Any) -> list[dict[str, Any]]:
    """TRL preference rows ``{"prompt", "chosen", "rejected"}`` (explicit prompt) of liked/disliked pairs:
    every pair of a prompt, or one with ``pairs="latest"`` (``feedback.export.pairs``)."""
    return _rows("dpo", turns, ratings, flags, options)


def kto_rows(turns: Records, ratings: Records = (), flags: Records = (), **options: Any) -> list[dict[str, Any]]:
    """TRL unpaired preference rows ``{"prompt", "completion", "label"}``, one per rated reply."""
    return _rows("kto", turns, ratings, flags, options)


def flag_rows(turns: Records, ratings: Records = (), flags: Records = (), **options: Any) -> list[dict[str, Any]]:
    """Review-queue rows of flagged replies (columns: ``feedback.export.formats.flags.FEATURES``)."""
    return _rows("flags", turns, ratings, flags, options)


def rows_from_data_dir(fmt: str, data_dir: str | os.PathLike[str], **options: Any) -> list[dict[str, Any]]:
    """Every row of a data dir's export in ``fmt`` (all splits, in order), as JSON values.

    For example ``rows_from_data_dir("dpo", "data")``; ``options`` are :class:`ExportOptions` fields.
    """
    return export_data_dir(fmt, data_dir, ExportOptions(**options)).rows()
