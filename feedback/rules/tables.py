"""The rules as Arrow tables: ratings, flags and reviews judged vectorized, for records given as objects.

Input tables hold the columns :data:`RATING_COLUMNS`, :data:`FLAG_COLUMNS`, :data:`REVIEW_COLUMNS` and
:data:`DELETION_COLUMNS` (typed as ``feedback.features.record_schema``), rows in file order. The
rules themselves are listed in ``feedback.rules``; the review queue and stats of records in memory use
this through ``feedback.rules.records``; what runs over a data dir (exports, the review index) is their
SQL form, ``feedback.rules.sql``, which ``tests/test_rules_sql.py`` holds to the same answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from feedback.arrow import bool_numpy, single_array
from schemas.records import DECISIONS, RATING_VALUES, Decision

LIKE, DISLIKE, UNRATED = 1, -1, 0
"""Rating codes of a reply (int8 in tables)."""

RATING_COLUMNS = ["conversation_id", "message_id", "timestamp", "rating", "option", "comment"]
FLAG_COLUMNS = ["conversation_id", "message_id", "timestamp", "reasons", "comment"]
REVIEW_COLUMNS = ["conversation_id", "message_id", "timestamp", "decision", "corrected_reply"]
DELETION_COLUMNS = ["conversation_id", "timestamp"]
KEY_SEPARATOR = "\x1f"
QUALITY_REASONS = ("Inaccurate", "Off-topic")
"""Flag reasons about a reply's quality, not its safety: a *disliked* reply flagged only for these stays
a negative example of the preference formats (see ``feedback.rules``). The default of ``--keep-flagged-reasons``."""


def reply_keys(table: pa.Table) -> pa.Array:
    """``conversation_id + "\\x1f" + message_id`` of each row (null where either is null)."""
    column = pc.binary_join_element_wise(table["conversation_id"], table["message_id"], KEY_SEPARATOR)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def deleted_conversations(deletions: pa.Table | None) -> frozenset[str]:
    """The conversation ids the deletion records of ``deletions`` (a table with ``conversation_id``; None: no
    table) name. Every record naming a conversation counts, whatever its other fields: a deletion is
    never undone, and a record of it that is partly unreadable still asks for it."""
    if deletions is None or deletions.num_rows == 0:
        return frozenset()
    ids = pc.unique(single_array(deletions["conversation_id"]).drop_null())
    return frozenset(ids.to_pylist())


def in_conversations(conversation_ids: pa.Array | pa.ChunkedArray, conversations: Collection[str]) -> np.ndarray:
    """Per row, True when its ``conversation_id`` is one of ``conversations`` (a null id: False)."""
    if not conversations:
        return np.zeros(len(conversation_ids), dtype=bool)
    values = pa.array(sorted(conversations), pa.string())
    return bool_numpy(pc.fill_null(pc.is_in(conversation_ids, value_set=values), False))


def without_conversations(table: pa.Table, conversations: Collection[str]) -> tuple[pa.Table, np.ndarray | None]:
    """``table`` without the rows of ``conversations``, and the positions in ``table`` of the rows kept
    (None when none was dropped: the positions are the rows' own)."""
    dropped = in_conversations(table["conversation_id"], conversations)
    if not dropped.any():
        return table, None
    kept = np.flatnonzero(~dropped)
    return table.take(pa.array(kept)), kept


def first_copies(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per row, True unless an earlier row has the same non-null key (a reply's turn is its first record)."""
    rows = pa.table({"key": keys, "row": pa.array(np.arange(len(keys)))})
    firsts = rows.filter(pc.is_valid(rows["key"])).group_by("key").aggregate([("row", "min")])["row_min"]
    keep = bool_numpy(pc.is_null(keys))
    keep[firsts.to_numpy()] = True
    return keep


class LatestReview(NamedTuple):
    """The latest review of a reply: its decision, the corrected reply (or None), its row in the reviews table."""

    decision: Decision
    corrected_reply: str | None
    row: int


@dataclass
class Verdicts:
    """The latest rating, the flags and the latest review of every reply that has any.

    Attributes:
        ratings: reply key -> LIKE or DISLIKE (undone replies are absent).
        latest: one row per rated reply: ``key``, ``conversation_id``, ``rating``, ``option``,
            ``comment`` (of its latest record) and ``row`` (that record's row in the ratings table).
        flags: reply key -> summary dict (``flag_count``, ``reasons`` as ``[{"reason", "count"}]``
            most frequent first, ``comments``, ``first_flagged_at``, ``last_flagged_at``, and the
            latest ``rating``, ``rating_option``, ``rating_comment``, None when unrated).
        both_ratings: conversations with at least one liked and one disliked reply.
        counts: per record kind, ``duplicates``, ``incomplete`` (a required field missing or
            invalid) and, for ratings, ``undone``.
        reviews: reply key -> its :class:`LatestReview`.
        copies: per record kind, per row of its table: True for an identical copy of an earlier
            record (it counts once: the copy is left out of flag counts and record lists).
        deleted: the deleted conversations (named by a deletion record): none of their ratings,
            flags and reviews is in any of the above (their rows in the tables are never the ``row``
            of a verdict, and never a copy); ``counts[kind]["deleted"]`` is how many records that was.
    """

    ratings: dict[str, int]
    latest: pa.Table
    flags: dict[str, dict[str, Any]]
    both_ratings: set[str]
    counts: dict[str, Counter] = field(default_factory=dict)
    reviews: dict[str, LatestReview] = field(default_factory=dict)
    copies: dict[str, np.ndarray] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()

    def decided(self, decision: Decision) -> set[str]:
        """Keys of flagged replies whose latest review is ``decision``."""
        return {key for key, review in self.reviews.items() if review.decision == decision and key in self.flags}

    def corrections(self) -> dict[str, str]:
        """Reply key -> the reviewer's corrected reply, for flagged replies whose latest review has one."""
        return {
            key: review.corrected_reply
            for key, review in self.reviews.items()
            if review.corrected_reply and key in self.flags
        }

    def replies(self, turns: pa.Table) -> ReplyVerdicts:
        """What these verdicts say about each turn of ``turns`` (``conversation_id``, ``message_id``)."""
        return ReplyVerdicts(turns, self)


class ReplyVerdicts:
    """The verdicts on each reply of a turn table, as numpy arrays aligned with its rows.

    ``rating`` (int8 code), ``flagged`` (any flag, dismissed or not) and ``deleted`` (the reply's
    conversation was deleted: a reader leaves it out whatever else is said of it; it is never rated or
    flagged, its records being dropped) are computed at once; the other properties when first read.
    """

    def __init__(self, turns: pa.Table, verdicts: Verdicts) -> None:
        self.keys = reply_keys(turns)
        self._key_list = self.keys.to_pylist()
        self._conversations = turns["conversation_id"]
        self._verdicts = verdicts
        self.rating = self._per_reply(lambda key: verdicts.ratings.get(key, UNRATED), np.int8)
        self.flagged = self._per_reply(verdicts.flags.__contains__, bool)
        self.deleted = in_conversations(turns["conversation_id"], verdicts.deleted)

    def _per_reply(self, value: Any, dtype: Any) -> np.ndarray:
        return np.fromiter(map(value, self._key_list), dtype=dtype, count=len(self._key_list))

    @cached_property
    def dismissed(self) -> np.ndarray:
        """Flagged replies whose latest review dismissed the flag."""
        return self._per_reply(self._verdicts.decided("dismissed").__contains__, bool)

    @cached_property
    def confirmed(self) -> np.ndarray:
        """Flagged replies whose latest review confirmed the flag: never a positive example."""
        return self._per_reply(self._verdicts.decided("confirmed").__contains__, bool)

    @cached_property
    def flag_stands(self) -> np.ndarray:
        """Flagged replies whose flag was not dismissed: a flag that keeps a reply out of training sets."""
        return self.flagged & ~self.dismissed

    def flagged_only_for(self, reasons: Collection[str]) -> np.ndarray:
        """Flagged replies all of whose flag reasons (every flag of the reply together) are in ``reasons``,
        e.g. :data:`QUALITY_REASONS`; a bool array aligned with the turns."""
        allowed, summaries = frozenset(reasons), self._verdicts.flags
        only = np.zeros(len(self._key_list), dtype=bool)
        for row in np.flatnonzero(self.flagged):
            only[row] = all(r["reason"] in allowed for r in summaries[self._key_list[row]]["reasons"])
        return only

    @cached_property
    def correction(self) -> pa.Array:
        """The reviewer's corrected reply of each flagged reply whose latest review has one, else null."""
        fixes = self._verdicts.corrections()
        return pa.array([fixes.get(key) for key in self._key_list], pa.string())

    @cached_property
    def in_mixed_conversation(self) -> np.ndarray:
        """Replies whose conversation has at least one liked and one disliked reply."""
        both = self._verdicts.both_ratings
        conversations = self._conversations.to_pylist()
        return np.fromiter((c in both for c in conversations), dtype=bool, count=len(conversations))


def judge(
    ratings: pa.Table,
    flags: pa.Table,
    reviews: pa.Table | None = None,
    deletions: pa.Table | None = None,
    *,
    progress: bool = False,
) -> Verdicts:
    """Verdicts from rating, flag, review and deletion records (``RATING_COLUMNS``, ``FLAG_COLUMNS``,
    ``REVIEW_COLUMNS``, ``DELETION_COLUMNS``), each table in file order.

    The ratings, flags and reviews of a conversation that a deletion record names are dropped before
    any rule runs, whenever they were written (before or after the deletion record); the verdicts'
    ``row`` and ``copies`` still refer to the rows of the tables given."""
    deleted = deleted_conversations(deletions)
    given = {
        "ratings": ratings.num_rows,
        "flags": flags.num_rows,
        "reviews": 0 if reviews is None else reviews.num_rows,
    }
    ratings, rating_rows = without_conversations(ratings, deleted)
    flags, flag_rows = without_conversations(flags, deleted)
    reviews, review_rows = without_conversations(reviews, deleted) if reviews is not None else (None, None)
    with tqdm(total=3, unit="step", desc="judging ratings and flags", disable=not progress) as bar:
        latest, rating_counts, rating_copies = latest_ratings(ratings)
        bar.update()
        codes = np.where(bool_numpy(pc.equal(latest["rating"], "like")), LIKE, DISLIKE).tolist()
        lookup = dict(zip(latest["key"].to_pylist(), codes, strict=True))
        bar.update()
        summaries, flag_counts, flag_copies = summarize_flags(flags)
        _add_latest_ratings(summaries, latest)
        bar.update()
    latest_review, review_copies = latest_reviews(reviews) if reviews is not None else ({}, np.zeros(0, bool))
    if rating_rows is not None:
        latest = latest.set_column(
            latest.column_names.index("row"), "row", pa.array(rating_rows[latest["row"].to_numpy()], pa.int64())
        )
    if review_rows is not None:
        latest_review = {
            key: review._replace(row=int(review_rows[review.row])) for key, review in latest_review.items()
        }
    rating_counts["deleted"] = given["ratings"] - ratings.num_rows
    flag_counts["deleted"] = given["flags"] - flags.num_rows
    return Verdicts(
        ratings=lookup,
        latest=latest,
        flags=summaries,
        both_ratings=_liked_and_disliked(latest),
        counts={"ratings": rating_counts, "flags": flag_counts},
        reviews=latest_review,
        copies={
            "ratings": _spread(rating_copies, rating_rows, given["ratings"]),
            "flags": _spread(flag_copies, flag_rows, given["flags"]),
            "reviews": _spread(review_copies, review_rows, given["reviews"]),
        },
        deleted=deleted,
    )


def _spread(mask: np.ndarray, rows: np.ndarray | None, size: int) -> np.ndarray:
    """A mask of the rows kept of a table (those at positions ``rows``; None: all) over all ``size`` rows of it."""
    if rows is None:
        return mask
    full = np.zeros(size, dtype=bool)
    full[rows] = mask
    return full


def _with_rows(table: pa.Table) -> pa.Table:
    """``table`` with ``key`` (reply key) and ``row`` (position in ``table``) columns."""
    return table.append_column("key", reply_keys(table)).append_column("row", pa.array(np.arange(table.num_rows)))


def _in_reply_order(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the rows by reply, then time, then file order; and the reply ids and times in that order."""
    key_ids = pc.dictionary_encode(single_array(table["key"])).indices.to_numpy(zero_copy_only=False)
    times = pc.cast(table["timestamp"], pa.int64()).to_numpy(zero_copy_only=False)
    order = np.lexsort((np.arange(table.num_rows), times, key_ids))
    return order, key_ids[order], times[order]


def _last_of_each_reply(order: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Of rows in ``order`` (by reply, time, file order) with reply ``ids``, the positions of each reply's last."""
    return order[np.append(np.flatnonzero(np.diff(ids)), len(ids) - 1)]


def _copies(
    table: pa.Table, order: np.ndarray, ids: np.ndarray, times: np.ndarray, columns: list[str], num_rows: int
) -> np.ndarray:
    """Per row of the ``num_rows`` judged (``table`` is a filtered part of them, with their ``row``),
    True when it equals the row before it in ``order``: same reply, same time, same ``columns``."""
    pairs = np.flatnonzero((np.diff(ids) == 0) & (np.diff(times) == 0))
    before = table.select(columns).take(pa.array(order[pairs])).to_pylist()
    after = table.select(columns).take(pa.array(order[pairs + 1])).to_pylist()
    same = np.fromiter((a == b for a, b in zip(before, after, strict=True)), dtype=bool, count=len(pairs))
    copies = np.zeros(num_rows, dtype=bool)
    copies[table["row"].to_numpy()[order[pairs + 1][same]]] = True
    return copies


def latest_reviews(reviews: pa.Table) -> tuple[dict[str, LatestReview], np.ndarray]:
    """Reply key -> its :class:`LatestReview` (by time, then file order), and the copies mask.

    Reviews without ids, time or a known decision are ignored.
    """
    table = _with_rows(reviews)
    known = pc.is_in(table["decision"], pa.array(DECISIONS, pa.string()))
    valid = pc.and_(pc.and_(pc.is_valid(table["key"]), pc.is_valid(table["timestamp"])), known)
    table = table.filter(pc.fill_null(valid, False))
    if table.num_rows == 0:
        return {}, np.zeros(reviews.num_rows, dtype=bool)
    order, ids, times = _in_reply_order(table)
    copies = _copies(table, order, ids, times, ["decision", "corrected_reply"], reviews.num_rows)
    last = table.take(pa.array(_last_of_each_reply(order, ids)))
    latest = {
        key: LatestReview(decision, fixed or None, row)
        for key, decision, fixed, row in zip(
            *(last[c].to_pylist() for c in ("key", "decision", "corrected_reply", "row")), strict=True
        )
    }
    return latest, copies


def _liked_and_disliked(latest: pa.Table) -> set[str]:
    """Conversations with at least one liked and one disliked reply."""
    liked = pa.table({"conversation_id": latest["conversation_id"], "liked": pc.equal(latest["rating"], "like")})
    groups = liked.group_by("conversation_id").aggregate([("liked", "any"), ("liked", "all")])
    mixed = groups.filter(pc.and_(groups["liked_any"], pc.invert(groups["liked_all"])))
    return set(mixed["conversation_id"].to_pylist())


def _add_latest_ratings(summaries: dict[str, dict[str, Any]], latest: pa.Table) -> None:
    """Put each flagged reply's latest rating (``rating``, ``rating_option``, ``rating_comment``) in its summary."""
    keys = list(summaries)
    found = latest.take(pc.index_in(pa.array(keys, pa.string()), value_set=latest["key"]))
    for key, rating, option, comment in zip(
        keys, *(found[c].to_pylist() for c in ("rating", "option", "comment")), strict=True
    ):
        summaries[key].update(rating=rating, rating_option=option, rating_comment=comment)


LATEST_COLUMNS = ["key", "conversation_id", "rating", "option", "comment", "row"]


def latest_ratings(ratings: pa.Table) -> tuple[pa.Table, Counter, np.ndarray]:
    """The latest rating record of each reply that is not an undo.

    Returns:
        A table ``key``, ``conversation_id``, ``rating`` ("like"/"dislike"), ``option``, ``comment``,
        ``row``; counts (``duplicates``, ``incomplete``: no ids, no timestamp or a rating outside
        like/dislike/null, ``undone``: replies whose latest record is an undo); and the copies mask.
    """
    counts: Counter = Counter()
    table = _with_rows(ratings)
    known = pc.or_kleene(pc.is_null(table["rating"]), pc.is_in(table["rating"], pa.array(RATING_VALUES, pa.string())))
    valid = pc.fill_null(pc.and_(pc.and_(pc.is_valid(table["key"]), pc.is_valid(table["timestamp"])), known), False)
    table = table.filter(valid)
    counts["incomplete"] = ratings.num_rows - table.num_rows
    if table.num_rows == 0:
        return table.select(LATEST_COLUMNS), counts, np.zeros(ratings.num_rows, dtype=bool)
    order, ids, times = _in_reply_order(table)
    copies = _copies(table, order, ids, times, ["rating", "option", "comment"], ratings.num_rows)
    counts["duplicates"] = int(copies.sum())
    last = _last_of_each_reply(order, ids)
    latest = table.select(LATEST_COLUMNS).take(pa.array(last))
    rated = latest.filter(pc.is_valid(latest["rating"]))
    counts["undone"] = latest.num_rows - rated.num_rows
    return rated, counts, copies


def summarize_flags(flags: pa.Table) -> tuple[dict[str, dict[str, Any]], Counter, np.ndarray]:
    """One summary per flagged reply (see :class:`Verdicts`), counts (``duplicates``, ``incomplete``)
    and the copies mask (a flag equal to an earlier one: same reply, time, reasons and comment).

    Times in the summaries are microseconds since the epoch (UTC). A reason named twice in one
    flag counts once.
    """
    counts: Counter = Counter()
    table = _with_rows(flags)
    complete = pc.and_(
        pc.and_(pc.is_valid(table["key"]), pc.is_valid(table["timestamp"])),
        pc.greater(pc.fill_null(pc.list_value_length(table["reasons"]), 0), 0),
    )
    table = table.filter(pc.fill_null(complete, False))
    counts["incomplete"] = flags.num_rows - table.num_rows
    table = table.take(pc.sort_indices(table["timestamp"]))
    columns = [table[name].to_pylist() for name in ("key", "reasons", "comment", "row")]
    times = pc.cast(table["timestamp"], pa.int64()).to_pylist()
    seen: set[tuple] = set()
    copies = np.zeros(flags.num_rows, dtype=bool)
    summaries: dict[str, dict[str, Any]] = {}
    for key, reasons, comment, row, time in zip(*columns, times, strict=True):
        if (key, time, tuple(reasons), comment) in seen:
            copies[row] = True
            continue
        seen.add((key, time, tuple(reasons), comment))
        summary = summaries.setdefault(
            key, {"flag_count": 0, "reasons": Counter(), "comments": [], "first_flagged_at": time}
        )
        summary["flag_count"] += 1
        summary["reasons"].update(dict.fromkeys(reasons, 1))
        summary["last_flagged_at"] = time
        if comment:
            summary["comments"].append(comment)
    counts["duplicates"] = int(copies.sum())
    for summary in summaries.values():
        summary["reasons"] = [{"reason": r, "count": n} for r, n in summary["reasons"].most_common()]
    return summaries, counts, copies
