"""What the ratings and flags say about each reply: its latest rating and whether it was flagged.

A reply is named by its *reply key*, ``conversation_id + "\\x1f" + message_id``: a rating or flag
counts for a turn only when both ids match (the recorder refuses anything else; a record that
names a reply of another conversation is left out as an unknown reply).

* The latest rating record of a reply wins (by timestamp; equal timestamps: the later in file
  order); ``rating: null`` is an undo, so a reply whose latest record is an undo is unrated.
* A reply is flagged when any flag record names it.
* Identical records (the same shard synced twice, two copies of a file) count once.
* The latest review of a flagged reply is its decision: ``dismissed`` (the flag no longer keeps
  the reply out), ``confirmed`` (the reply stays out of SFT and of KTO-true even when liked,
  and is never a DPO ``chosen``), ``needs-fix``; a ``corrected_reply`` becomes a DPO ``chosen``
  against the flagged reply.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from feedback.export.arrow import bool_numpy, single_array

LIKE, DISLIKE, UNRATED = 1, -1, 0
"""Rating codes of a reply (int8 in tables)."""
RATING_CODES = {"like": LIKE, "dislike": DISLIKE}
RATING_NAMES = {LIKE: "like", DISLIKE: "dislike", UNRATED: None}

RATING_COLUMNS = ["conversation_id", "message_id", "timestamp", "rating", "option", "comment"]
FLAG_COLUMNS = ["conversation_id", "message_id", "timestamp", "reasons", "comment"]
REVIEW_COLUMNS = ["conversation_id", "message_id", "timestamp", "decision", "corrected_reply"]
KEY_SEPARATOR = "\x1f"



def reply_keys(table: pa.Table) -> pa.Array:
    """``conversation_id + "\\x1f" + message_id`` of each row (null where either is null)."""
    column = pc.binary_join_element_wise(table["conversation_id"], table["message_id"], KEY_SEPARATOR)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


@dataclass
class Verdicts:
    """The latest rating and the flags of every reply that has any.

    Attributes:
        ratings: reply key -> LIKE or DISLIKE (undone replies are absent).
        latest: one row per rated reply: ``key``, ``conversation_id``, ``rating``, ``option``,
            ``comment`` (of its latest record).
        flags: reply key -> summary dict (``flag_count``, ``reasons`` as ``[{"reason", "count"}]``
            most frequent first, ``comments``, ``first_flagged_at``, ``last_flagged_at``, and the
            latest ``rating``, ``rating_option``, ``rating_comment``, None when unrated).
        both_ratings: conversations with at least one liked and one disliked reply.
        counts: per record kind, ``duplicates``, ``incomplete`` (a required field missing or
            invalid) and, for ratings, ``undone``.
        reviews: reply key -> ``(decision, corrected_reply or None)`` of its latest review.
    """

    ratings: dict[str, int]
    latest: pa.Table
    flags: dict[str, dict[str, Any]]
    both_ratings: set[str]
    counts: dict[str, Counter] = field(default_factory=dict)
    reviews: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def decided(self, decision: str) -> set[str]:
        """Keys of flagged replies whose latest review is ``decision``."""
        return {key for key, (made, _) in self.reviews.items() if made == decision and key in self.flags}

    def corrections(self) -> dict[str, str]:
        """Reply key -> the reviewer's corrected reply, for flagged replies whose latest review has one."""
        return {key: fixed for key, (_, fixed) in self.reviews.items() if fixed and key in self.flags}


def judge(ratings: pa.Table, flags: pa.Table, reviews: pa.Table | None = None, *, progress: bool = False) -> Verdicts:
    """Verdicts from rating, flag and review records (``RATING_COLUMNS``, ``FLAG_COLUMNS``,
    ``REVIEW_COLUMNS``), in file order."""
    with tqdm(total=3, unit="step", desc="judging ratings and flags", disable=not progress) as bar:
        latest, rating_counts = latest_ratings(ratings)
        bar.update()
        codes = np.where(bool_numpy(pc.equal(latest["rating"], "like")), LIKE, DISLIKE).tolist()
        lookup = dict(zip(latest["key"].to_pylist(), codes, strict=True))
        bar.update()
        summaries, flag_counts = summarize_flags(flags)
        _add_latest_ratings(summaries, latest)
        bar.update()
    return Verdicts(
        ratings=lookup,
        latest=latest,
        flags=summaries,
        both_ratings=_liked_and_disliked(latest),
        counts={"ratings": rating_counts, "flags": flag_counts},
        reviews=latest_reviews(reviews) if reviews is not None else {},
    )


def latest_reviews(reviews: pa.Table) -> dict[str, tuple[str, str | None]]:
    """Reply key -> ``(decision, corrected_reply)`` of its latest review (by time, then file order).

    Reviews without ids, time or a known decision are ignored.
    """
    table = reviews.append_column("key", reply_keys(reviews))
    known = pc.is_in(table["decision"], pa.array(["confirmed", "dismissed", "needs-fix"]))
    valid = pc.and_(pc.and_(pc.is_valid(table["key"]), pc.is_valid(table["timestamp"])), known)
    table = table.filter(pc.fill_null(valid, False))
    table = table.take(pc.sort_indices(table, sort_keys=[("timestamp", "ascending")]))  # stable: file order kept
    latest: dict[str, tuple[str, str | None]] = {}
    for key, decision, fixed in zip(*(table[c].to_pylist() for c in ("key", "decision", "corrected_reply")),
                                    strict=True):
        latest[key] = (decision, fixed or None)
    return latest


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
    for key, rating, option, comment in zip(keys, *(found[c].to_pylist() for c in ("rating", "option", "comment")),
                                            strict=True):
        summaries[key].update(rating=rating, rating_option=option, rating_comment=comment)


def latest_ratings(ratings: pa.Table) -> tuple[pa.Table, Counter]:
    """The latest rating record of each reply that is not an undo.

    Returns:
        A table ``key``, ``conversation_id``, ``rating`` ("like"/"dislike"), ``option``, ``comment``,
        and counts (``duplicates``, ``incomplete``: no ids, no timestamp or a rating outside
        like/dislike/null, ``undone``: replies whose latest record is an undo).
    """
    counts: Counter = Counter()
    keys = reply_keys(ratings)
    known = pc.or_kleene(pc.is_null(ratings["rating"]), pc.is_in(ratings["rating"], pa.array(list(RATING_CODES))))
    valid = pc.fill_null(pc.and_(pc.and_(pc.is_valid(keys), pc.is_valid(ratings["timestamp"])), known), False)
    table = ratings.append_column("key", keys).filter(valid)
    counts["incomplete"] = ratings.num_rows - table.num_rows
    if table.num_rows == 0:
        return table.select(["key", "conversation_id", "rating", "option", "comment"]), counts
    key_ids = pc.dictionary_encode(single_array(table["key"])).indices.to_numpy(zero_copy_only=False)
    times = pc.cast(table["timestamp"], pa.int64()).to_numpy(zero_copy_only=False)
    order = np.lexsort((np.arange(table.num_rows), times, key_ids))  # by reply, then time, then file order
    ids, times = key_ids[order], times[order]
    counts["duplicates"] = _identical_neighbours(table, order, (np.diff(ids) == 0) & (np.diff(times) == 0))
    last = order[np.append(np.flatnonzero(np.diff(ids)), len(ids) - 1)]
    latest = table.select(["key", "conversation_id", "rating", "option", "comment"]).take(pa.array(last))
    rated = latest.filter(pc.is_valid(latest["rating"]))
    counts["undone"] = latest.num_rows - rated.num_rows
    return rated, counts


def _identical_neighbours(table: pa.Table, order: np.ndarray, same_time: np.ndarray) -> int:
    """How many records, in ``order``, equal the one before them (same reply and time: checked whole)."""
    pairs = np.flatnonzero(same_time)
    columns = ["rating", "option", "comment"]
    before = table.select(columns).take(pa.array(order[pairs])).to_pylist()
    after = table.select(columns).take(pa.array(order[pairs + 1])).to_pylist()
    return sum(a == b for a, b in zip(before, after, strict=True))


def summarize_flags(flags: pa.Table) -> tuple[dict[str, dict[str, Any]], Counter]:
    """One summary per flagged reply (see :class:`Verdicts`), and counts (``duplicates``, ``incomplete``).

    Times in the summaries are microseconds since the epoch (UTC).
    """
    counts: Counter = Counter()
    table = flags.append_column("key", reply_keys(flags))
    complete = pc.and_(pc.and_(pc.is_valid(table["key"]), pc.is_valid(table["timestamp"])),
                       pc.greater(pc.fill_null(pc.list_value_length(table["reasons"]), 0), 0))
    table = table.filter(pc.fill_null(complete, False))
    counts["incomplete"] = flags.num_rows - table.num_rows
    table = table.take(pc.sort_indices(table["timestamp"]))
    columns = [table[name].to_pylist() for name in ("key", "reasons", "comment")]
    times = pc.cast(table["timestamp"], pa.int64()).to_pylist()
    seen: set[tuple] = set()
    summaries: dict[str, dict[str, Any]] = {}
    for key, reasons, comment, time in zip(*columns, times, strict=True):
        if (key, time, tuple(reasons), comment) in seen:
            counts["duplicates"] += 1
            continue
        seen.add((key, time, tuple(reasons), comment))
        summary = summaries.setdefault(key, {"flag_count": 0, "reasons": Counter(), "comments": [],
                                             "first_flagged_at": time})
        summary["flag_count"] += 1
        summary["reasons"].update(dict.fromkeys(reasons, 1))
        summary["last_flagged_at"] = time
        if comment:
            summary["comments"].append(comment)
    for summary in summaries.values():
        summary["reasons"] = [{"reason": r, "count": n} for r, n in summary["reasons"].most_common()]
    return summaries, counts
