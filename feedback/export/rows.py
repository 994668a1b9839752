"""Rows from candidate replies: built and serialized per shard, then deduplicated, split and written.

* Order: log order (shards by name, lines in order); a DPO pair comes where its later reply is.
  Shard names start with their UTC start time, so this is roughly time order, and it does not
  depend on where the log was read from.
* Split: a conversation is in ``test`` when a keyed hash of its id (key: the seed) falls below
  ``test_size``. So no conversation is in both splits, the split is the same for every format
  (SFT, DPO and KTO rows of a conversation land together) and a conversation keeps its split as
  the log grows. The test share is ``test_size`` on average, not exactly. A cross-conversation
  pair whose two conversations fall in different splits is left out.
* Identical rows (same TRL columns, ids aside) are kept once, the first in order; they are
  compared by a 128-bit BLAKE2b digest of their JSON. The kept row's ``count`` is the number of
  distinct conversations that gave it (a pair's conversation is its chosen reply's): two users who
  liked the same reply to the same prompt make one row of count 2. It is known once every row is
  seen, so it is added to the rows (``include_ids``) at the end: :func:`with_count`.
* A reviewer's corrected reply (formats that take corrections) is a reply of its own: the
  correction as ``response``, ``message_id`` null, ``corrected_id`` the flagged reply; in a
  one-row-per-reply format it comes right after the flagged reply, in a paired one it is
  ``chosen`` against the flagged reply, after the rating pairs.

Rows of a format with one row per reply (SFT, KTO, flags) are built and serialized in the reading
threads, shard by shard, so no export holds more than a few shards of text; a paired format (DPO)
first pairs all candidate replies: a :class:`CandidateStore` keeps their ids, ratings and prompt
lengths in memory and their text (prompt and response) in a temporary file, and only the replies
that can pair (a liked and a disliked reply under one coarse prompt key) and reviewers' corrections
are read back, so memory holds the text of the rows made, not of every rated reply.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from feedback.arrow import RowTaker, bool_numpy
from feedback.export.formats.spec import COUNT
from feedback.export.options import ExportOptions
from feedback.export.pairs import last_content_hashes, mixed_prompt_rows, preference_pairs
from feedback.rules import LIKE, Verdicts, first_copies

if TYPE_CHECKING:
    from feedback.export.formats import ExportFormat, PairFormat, ReplyFormat

SPLITS = ("train", "test")
ROW_BATCH = 2048
"""DPO rows built and serialized at a time."""

CORRECTION = "review|"
"""The ``RowBatch.replies`` key of a correction row starts with this, then the flagged reply's key."""

Sink = Callable[[str, list[bytes]], None]
"""Receives kept rows: their split and their JSON lines (no newlines), in order."""


def in_test_split(conversation_id: str, *, test_size: float, seed: int) -> bool:
    """True when the conversation belongs to the test split (a keyed BLAKE2b hash below ``test_size``)."""
    digest = hashlib.blake2b(conversation_id.encode(), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "big") < test_size * 2**64


def split_mask(conversations: list[str], options: ExportOptions) -> np.ndarray:
    """Per row, True when its conversation is in the test split."""
    if options.test_size == 0:
        return np.zeros(len(conversations), dtype=bool)
    verdict = {c: in_test_split(c, test_size=options.test_size, seed=options.seed) for c in set(conversations)}
    return np.fromiter((verdict[c] for c in conversations), dtype=bool, count=len(conversations))


@dataclass
class RowBatch:
    """Serialized rows in order, before deduplication.

    Attributes:
        replies: per row, the reply key(s) it was made from (a copy of a reply in a later shard
            makes the same row again and is skipped).
        conversations: per row, its conversation (a pair: the chosen reply's).
        test: per row, True for the test split.
        lines: per row, its JSON.
        digests: per row, the 128-bit BLAKE2b digest of its TRL columns' JSON.
        liked: per row, whether its reply was liked (the balance in ``stats.json``).
        has_files: per row, whether its prompt had files.
    """

    replies: list[str]
    conversations: list[str]
    test: np.ndarray
    lines: list[bytes]
    digests: list[bytes]
    liked: np.ndarray
    has_files: np.ndarray


def serialize(table: pa.Table, spec: ExportFormat) -> tuple[list[bytes], list[bytes]]:
    """Each row's JSON line (times ISO 8601 with ``Z``) and the digest of its format columns' JSON (ids aside)."""
    trl = list(spec.features)
    with_ids = table.column_names != trl
    lines, digests = [], []
    for row in table.to_pylist():
        line = orjson.dumps(row, option=orjson.OPT_UTC_Z)
        key = orjson.dumps({name: row[name] for name in trl}, option=orjson.OPT_UTC_Z) if with_ids else line
        lines.append(line)
        digests.append(hashlib.blake2b(key, digest_size=16).digest())
    return lines, digests


def reply_rows(candidates: pa.Table, verdicts: Verdicts, spec: ReplyFormat, options: ExportOptions) -> RowBatch:
    """The rows of one shard's candidate replies in a one-row-per-reply format, serialized: one per kept
    (``pairable``) reply and, for a format that ``takes_corrections``, one per reviewer's correction."""
    replies, keys = _row_replies(candidates)
    table = spec.rows(replies, verdicts).select(spec.built_columns(include_ids=options.include_ids))
    lines, digests = serialize(table, spec)
    conversations = replies["conversation_id"].to_pylist()
    return RowBatch(
        replies=keys,
        conversations=conversations,
        test=split_mask(conversations, options),
        lines=lines,
        digests=digests,
        liked=replies["rating"].to_numpy() == LIKE,
        has_files=bool_numpy(replies["has_files"]),
    )


def _row_replies(candidates: pa.Table) -> tuple[pa.Table, list[str]]:
    """The replies that make rows, in log order (a correction right after the reply it corrects), with a
    ``corrected_id`` column; and the key of each (``review|<key>`` for a correction)."""
    regular = candidates.append_column("corrected_id", pa.nulls(candidates.num_rows, pa.string()))
    fixed = np.flatnonzero(bool_numpy(pc.is_valid(candidates["correction"])))
    if len(fixed) == 0:  # then every candidate is a kept reply
        return regular, regular["key"].to_pylist()
    kept = np.flatnonzero(bool_numpy(candidates["pairable"]))
    corrections = corrected_replies(candidates.take(pa.array(fixed)))
    order = pa.array(np.argsort(np.concatenate([kept, fixed]), kind="stable"))
    replies = pa.concat_tables([regular.take(pa.array(kept)), corrections]).take(order)
    keys = [*regular["key"].take(pa.array(kept)).to_pylist(), *_correction_keys(corrections)]
    return replies, [keys[i] for i in order.to_pylist()]


def corrected_replies(flagged: pa.Table) -> pa.Table:
    """Flagged candidate replies with a reviewer's ``correction`` as replies of their own: ``response`` the
    correction, ``message_id`` null, ``corrected_id`` the flagged reply's ``message_id``."""
    table = flagged.set_column(flagged.schema.get_field_index("response"), "response", flagged["correction"])
    table = table.set_column(
        table.schema.get_field_index("message_id"), "message_id", pa.nulls(table.num_rows, pa.string())
    )
    return table.append_column("corrected_id", flagged["message_id"])


def _correction_keys(corrections: pa.Table) -> list[str]:
    return [f"{CORRECTION}{key}" for key in corrections["key"].to_pylist()]


class CandidateStore:
    """The candidate replies of a paired format, shard by shard: text in a temporary file, the rest in memory.

    :meth:`add` takes a shard's candidates (``feedback.export.replies.select_replies``), in log order;
    their ``prompt`` and ``response`` go to an Arrow IPC file in a temporary folder (``$TMPDIR``),
    the other columns stay, with ``length`` (messages in the prompt), ``last`` (with
    ``cross_conversation``: a hash of the prompt's last message) and ``spilled`` (the row in the file).
    :meth:`replies` gives the distinct candidates (the first copy of each key) without text;
    :meth:`with_text` the whole rows of some of them. Use it as a context manager: the file is
    removed at the end.
    """

    TEXT = ("prompt", "response")

    def __init__(self, *, cross_conversation: bool) -> None:
        self.cross_conversation = cross_conversation
        self.folder = tempfile.mkdtemp(prefix="feedback-export-")
        self.path = f"{self.folder}/candidates.arrow"
        self.schema: pa.Schema | None = None
        self._light: list[pa.Table] = []
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._rows = 0

    def __enter__(self) -> CandidateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temporary file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def add(self, candidates: pa.Table) -> None:
        """Keep one shard's candidate replies (their text written to the file)."""
        if self.schema is None:
            self.schema = candidates.schema
        if candidates.num_rows == 0 and self._light:
            return
        text = candidates.select(list(self.TEXT)).combine_chunks()
        if self._writer is None:
            self._writer = pa.ipc.new_file(self.path, text.schema)
        if text.num_rows:
            self._writer.write_table(text)
        light = candidates.drop_columns(list(self.TEXT))
        light = light.append_column("length", pc.list_value_length(candidates["prompt"]))
        if self.cross_conversation:
            light = light.append_column("last", last_content_hashes(candidates["prompt"]))
        self._light.append(light.append_column("spilled", pa.array(np.arange(self._rows, self._rows + text.num_rows))))
        self._rows += text.num_rows

    def replies(self) -> pa.Table:
        """Every distinct candidate reply (the first copy of each ``key``), in log order, without text."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        light = pa.concat_tables(self._light)
        self._light = [light]
        return light.filter(pa.array(first_copies(light["key"])))

    def with_text(self, light: pa.Table) -> pa.Table:
        """The whole candidate rows (the columns given to :meth:`add`) of ``light``'s rows (some of
        :meth:`replies`, in its order), their text read back from the file."""
        wanted = light["spilled"].to_numpy()
        pieces, start = [], 0
        if len(wanted):
            with pa.OSFile(self.path) as source:  # read, not mapped: a mapped page read stays in RSS while mapped
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    batch = reader.get_batch(i)  # one shard's text in memory at a time
                    low, high = np.searchsorted(wanted, [start, start + batch.num_rows])
                    if high > low:
                        pieces.append(batch.take(pa.array(wanted[low:high] - start)))
                    start += batch.num_rows
                    del batch
        text = pa.Table.from_batches(pieces, schema=pa.schema([self.schema.field(n) for n in self.TEXT]))
        columns = {name: text[name] if name in self.TEXT else light[name] for name in self.schema.names}
        return pa.table(columns, schema=self.schema)


def pair_rows(
    store: CandidateStore, spec: PairFormat, options: ExportOptions, *, progress: bool = False
) -> tuple[Iterator[RowBatch], Counter]:
    """The rows of a paired format from all candidate replies, in batches, and what pairing left out.

    Rating pairs come from the ``pairable`` replies (every pair, or with ``options.pairs == "latest"``
    one per prompt: ``feedback.export.pairs``); each reply with a reviewer's ``correction`` also
    makes a pair: the correction as ``chosen`` (``chosen_id`` null), the reply as ``rejected``.
    Only the text of the replies that may pair and of the corrected ones is read from ``store``.

    Returns:
        The batches (built as they are iterated, once) and counts ``no_opposite_rating``, ``identical_chosen_rejected``,
        ``pair_straddles_split``, ``not_latest_pair`` (with ``pairs="latest"``) and
        ``review_corrections`` (pairs made from corrections).
    """
    light = store.replies()
    pairable = np.flatnonzero(bool_numpy(light["pairable"]))
    mixed = pairable[mixed_prompt_rows(light.take(pa.array(pairable)), options.cross_conversation)]
    fixed = np.flatnonzero(bool_numpy(pc.is_valid(light["correction"])))
    candidates = store.with_text(light.take(pa.array(np.union1d(mixed, fixed).astype(np.int64))))
    del light
    corrected = candidates.filter(pc.is_valid(candidates["correction"]))
    replies = candidates.filter(candidates["pairable"])
    taker = RowTaker(replies)
    chosen, rejected, counts = preference_pairs(
        replies,
        taker,
        cross_conversation=options.cross_conversation,
        latest=options.pairs == "latest",
        progress=progress,
        rows=np.arange(replies.num_rows),
        total=len(pairable),
    )
    order = np.lexsort((chosen, np.maximum(chosen, rejected)))
    chosen, rejected = chosen[order], rejected[order]
    conversations = replies["conversation_id"].to_numpy(zero_copy_only=False)
    test = split_mask(conversations[chosen].tolist(), options)
    same = test == split_mask(conversations[rejected].tolist(), options)
    counts["pair_straddles_split"] = int((~same).sum())
    chosen, rejected, test = chosen[same], rejected[same], test[same]
    if corrected.num_rows:
        counts["review_corrections"] = corrected.num_rows
    return _pair_batches(taker, chosen, rejected, test, corrected, spec, options, progress), counts


def _pair_batches(
    taker: RowTaker,
    chosen: np.ndarray,
    rejected: np.ndarray,
    test: np.ndarray,
    corrected: pa.Table,
    spec: PairFormat,
    options: ExportOptions,
    progress: bool,
) -> Iterator[RowBatch]:
    """The pairs' rows, ``ROW_BATCH`` at a time as they are consumed (no batch waits in memory), then the
    corrections' rows."""
    columns = spec.built_columns(include_ids=options.include_ids)
    for start in tqdm(
        range(0, len(chosen), ROW_BATCH), unit="batch", desc=f"building {spec.name} rows", disable=not progress
    ):
        good, bad = taker.take(chosen[start : start + ROW_BATCH]), taker.take(rejected[start : start + ROW_BATCH])
        lines, digests = serialize(spec.rows(good, bad).select(columns), spec)
        yield RowBatch(
            replies=[f"{a}|{b}" for a, b in zip(good["key"].to_pylist(), bad["key"].to_pylist(), strict=True)],
            conversations=good["conversation_id"].to_pylist(),
            test=test[start : start + ROW_BATCH],
            lines=lines,
            digests=digests,
            liked=np.ones(len(lines), dtype=bool),
            has_files=bool_numpy(good["has_files"]),
        )
    if corrected.num_rows:
        yield correction_rows(corrected, spec, options)


def correction_rows(flagged: pa.Table, spec: PairFormat, options: ExportOptions) -> RowBatch:
    """Rows of reviewer corrections: ``chosen`` the corrected reply, ``rejected`` the flagged one."""
    chosen = corrected_replies(flagged)
    columns = spec.built_columns(include_ids=options.include_ids)
    lines, digests = serialize(spec.rows(chosen, flagged).select(columns), spec)
    conversations = flagged["conversation_id"].to_pylist()
    return RowBatch(
        replies=_correction_keys(chosen),
        conversations=conversations,
        test=split_mask(conversations, options),
        lines=lines,
        digests=digests,
        liked=np.ones(len(lines), dtype=bool),
        has_files=bool_numpy(flagged["has_files"]),
    )


def with_count(line: bytes, count: int) -> bytes:
    """A row's JSON line (an object) with its :data:`~feedback.export.formats.spec.COUNT` column added last.

    >>> with_count(b'{"label":true}', 2)
    b'{"label":true,"count":2}'
    """
    return b'%s,"%s":%d}' % (line[:-1], COUNT.encode(), count)


@dataclass
class RowWriter:
    """Keeps each row once, in order, and hands it to ``sink`` (or keeps it, with no sink).

    Attributes:
        collected: ``(split, line)`` of every kept row, when there is no sink.
        counts: per split ``rows``, ``liked``, ``with_files``; ``duplicate`` rows removed;
            ``correction_rows`` rows made from a reviewer's correction (before identical rows are removed).
        conversations: per split, the conversations of its rows.
    """

    sink: Sink | None = None
    collected: list[tuple[str, bytes]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    conversations: dict[str, set[str]] = field(default_factory=lambda: {split: set() for split in SPLITS})
    _replies: set[str] = field(default_factory=set)
    _rows: dict[bytes, int] = field(default_factory=dict)  # digest -> kept row number
    _first: list[str] = field(default_factory=list)  # kept row -> its conversation
    _test: bytearray = field(default_factory=bytearray)  # kept row -> 1 in test
    _agreeing: dict[int, set[str]] = field(default_factory=dict)  # kept row -> conversations, when several

    def add(self, batch: RowBatch) -> None:
        """Keep the batch's rows that are new (not a copy of an earlier reply, not an identical row)."""
        out: dict[str, list[bytes]] = {split: [] for split in SPLITS}
        for i, (reply, digest) in enumerate(zip(batch.replies, batch.digests, strict=True)):
            if reply in self._replies:
                continue  # a copy of a reply already seen (counted with the turn records)
            self._replies.add(reply)
            if reply.startswith(CORRECTION):
                self.counts["correction_rows"] += 1
            conversation = sys.intern(batch.conversations[i])
            kept = self._rows.get(digest)
            if kept is not None:
                self.counts["duplicate"] += 1
                if conversation != self._first[kept]:
                    self._agreeing.setdefault(kept, {self._first[kept]}).add(conversation)
                continue
            self._rows[digest] = len(self._first)
            self._first.append(conversation)
            self._test.append(int(batch.test[i]))
            split = SPLITS[int(batch.test[i])]
            if self.sink is None:
                self.collected.append((split, batch.lines[i]))
            else:
                out[split].append(batch.lines[i])
            self.conversations[split].add(conversation)
            self.counts.update(
                {f"{split}_rows": 1, f"{split}_liked": int(batch.liked[i]), "with_files": int(batch.has_files[i])}
            )
        for split, lines in out.items():
            if lines:
                self.sink(split, lines)

    def row_counts(self) -> dict[str, list[int]]:
        """Per split, the ``count`` of each kept row in order: the distinct conversations that gave it."""
        counts: dict[str, list[int]] = {split: [] for split in SPLITS}
        for row, test in enumerate(self._test):
            counts[SPLITS[test]].append(len(self._agreeing[row]) if row in self._agreeing else 1)
        return counts
