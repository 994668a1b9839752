"""The rules for records given as objects (the review queue, the stats): the same engine, through Arrow.

Records are put into the tables ``feedback.rules.tables`` judges (one column per field it reads,
rows in the order given), so a reply's latest rating, its flags and its latest review are decided
by the very code the exports use; this module only maps the results back to the records::

    judged = judge_records(records)          # records of any kind, in file order
    for reply in judged.replies.values():    # every reply with a turn record, deleted conversations left out
        reply.rating, reply.decision, len(reply.flags)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from feedback.rules.tables import (
    DELETION_COLUMNS,
    FLAG_COLUMNS,
    RATING_COLUMNS,
    REVIEW_COLUMNS,
    Verdicts,
    first_copies,
    judge,
    reply_keys,
)
from schemas.records import Decision, Flag, Rating, RatingValue, Record, Review, Turn

JUDGED_COLUMNS = {
    "ratings": RATING_COLUMNS,
    "flags": FLAG_COLUMNS,
    "reviews": REVIEW_COLUMNS,
    "deletions": DELETION_COLUMNS,
}
"""The fields of each judged record kind the rules read."""
ABOUT_REPLIES = ("ratings", "flags", "reviews")
"""The judged kinds whose records name a reply."""


@dataclass(frozen=True)
class Reply:
    """One reply (a turn) and every record about it, as the rules count them.

    Attributes:
        key: the reply key (``conversation_id`` + ``message_id``).
        turn: its turn record (the first copy, in the order given).
        ratings, flags, reviews: the records naming this reply in its conversation, identical
            copies once, in time order (equal times: the order given).
        latest_rating: the rating record that counts; None when never rated or the latest is an undo.
        review: the latest review (its decision counts); None when never reviewed.
        reason_counts: flags per reason (a reason named twice in one flag counts once).
    """

    key: str
    turn: Turn
    ratings: tuple[Rating, ...] = ()
    flags: tuple[Flag, ...] = ()
    reviews: tuple[Review, ...] = ()
    latest_rating: Rating | None = None
    review: Review | None = None
    reason_counts: Counter[str] = field(default_factory=Counter)

    @property
    def rating(self) -> RatingValue | None:
        """``like`` or ``dislike``; None when unrated or undone."""
        return self.latest_rating.rating if self.latest_rating else None

    @property
    def decision(self) -> Decision | None:
        """The latest review's decision; None when never reviewed."""
        return self.review.decision if self.review else None


@dataclass(frozen=True)
class JudgedRecords:
    """Records judged by the rules.

    Attributes:
        verdicts: the engine's verdicts (counts of duplicates, undos, incomplete records, ...).
        replies: reply key -> :class:`Reply`, for every reply with a turn record, in turn order,
            but those of a deleted conversation (``verdicts.deleted``). Ratings, flags and reviews
            naming no known reply (e.g. a message id with another conversation's id) are in no reply.
    """

    verdicts: Verdicts
    replies: dict[str, Reply]


def judge_records(records: Iterable[Record]) -> JudgedRecords:
    """Judge turns, ratings, flags, reviews and deletions (``schemas.records`` models, any kinds mixed).

    The order given is the file order that breaks ties between equal timestamps. A conversation a
    deletion record names has no reply, whatever the order of its records. Records of other kinds
    are ignored.
    """
    given: dict[str, list] = {"turns": [], **{kind: [] for kind in JUDGED_COLUMNS}}
    for record in records:
        if record.kind in given:
            given[record.kind].append(record)
    tables = {kind: _table(given[kind], kind, columns) for kind, columns in JUDGED_COLUMNS.items()}
    verdicts = judge(tables["ratings"], tables["flags"], tables["reviews"], tables["deletions"])
    attached = {kind: _by_reply(given[kind], tables[kind], verdicts.copies[kind]) for kind in ABOUT_REPLIES}
    latest = dict(zip(verdicts.latest["key"].to_pylist(), verdicts.latest["row"].to_pylist(), strict=True))
    turns = given["turns"]
    judged = verdicts.replies(_table(turns, "turns", ["conversation_id", "message_id"]))
    keys = judged.keys
    replies: dict[str, Reply] = {}
    for key, turn, first, deleted in zip(keys.to_pylist(), turns, first_copies(keys), judged.deleted, strict=True):
        if not first or deleted:
            continue  # a copy of the turn (the first one counts), or a deleted conversation's
        review = verdicts.reviews.get(key)
        flagged = verdicts.flags.get(key, {"reasons": []})
        replies[key] = Reply(
            key=key,
            turn=turn,
            ratings=attached["ratings"].get(key, ()),
            flags=attached["flags"].get(key, ()),
            reviews=attached["reviews"].get(key, ()),
            latest_rating=given["ratings"][latest[key]] if key in latest else None,
            review=given["reviews"][review.row] if review else None,
            reason_counts=Counter({r["reason"]: r["count"] for r in flagged["reasons"]}),
        )
    return JudgedRecords(verdicts=verdicts, replies=replies)


def _table(records: Sequence[Record], kind: str, columns: list[str]) -> pa.Table:
    """The ``columns`` of ``records`` as a table typed like the data dir's shards."""
    from feedback.features import record_schema  # imports `datasets`: not for `import feedback.rules` (CLI --help)

    schema = record_schema(kind, columns)
    return pa.table(
        {name: pa.array([getattr(r, name) for r in records], schema.field(name).type) for name in columns},
        schema=schema,
    )


def _by_reply(records: list, table: pa.Table, copies: np.ndarray) -> dict[str, tuple]:
    """Reply key -> its records of one kind in time order (equal times: given order), copies left out."""
    keys = reply_keys(table).to_pylist()
    grouped: dict[str, list] = {}
    for i in sorted(range(len(records)), key=lambda i: records[i].timestamp):
        if not copies[i]:
            grouped.setdefault(keys[i], []).append(records[i])
    return {key: tuple(group) for key, group in grouped.items()}
