"""The rules' test records: one set covering every rule (:data:`RECORDS`, with the rating that counts for each
reply, :data:`LATEST`), hypothesis strategies of any records on a few replies, and the DuckDB (SQL) queue and
stats of a source, for the engines' agreement tests (test_rules, test_rules_sql, test_rules_deletions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from hypothesis import strategies as st

from feedback.review.index import ReviewIndex
from feedback.review.queue import QueueFilter, queue_page
from feedback.review.stats import FeedbackStats, index_stats
from schemas.records import DECISIONS, Deletion, Flag, Rating, Record, Review, Turn
from support.records import make_flag, make_rating, make_review, make_turn

T0 = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
A, B = "conv-aaaaaaaa", "conv-bbbbbbbb"


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def turn(cid: str, mid: str, minute: int = 0) -> Turn:
    return make_turn(cid, mid, text=mid, response=f"reply {mid}", model="m1", timestamp=at(minute))


def rating(cid: str, mid: str, value: str | None, minute: int, **extra: str) -> Rating:
    return make_rating(cid, mid, value, timestamp=at(minute), **extra)


def flag(cid: str, mid: str, minute: int, *reasons: str, comment: str | None = None) -> Flag:
    return make_flag(cid, mid, *reasons, comment=comment, timestamp=at(minute))


def review(cid: str, mid: str, decision: str, minute: int, fixed: str | None = None) -> Review:
    return make_review(cid, mid, decision, corrected_reply=fixed, timestamp=at(minute))


TURNS = [
    turn(A, mid)
    for mid in (
        "undone-reply",
        "changed-reply",
        "tied-reply",
        "copied-reply",
        "dismissed-reply",
        "confirmed-reply",
        "fixme-reply",
    )
] + [turn(B, "owned-reply")]
RATINGS = [
    rating(A, "undone-reply", "like", 1),
    rating(A, "undone-reply", None, 2),  # an undo
    rating(A, "changed-reply", "like", 1),
    rating(A, "changed-reply", "dislike", 2),
    rating(A, "changed-reply", "like", 24 * 60),  # changed twice, the last a day later
    rating(A, "tied-reply", "dislike", 3),
    rating(A, "tied-reply", "like", 3),  # equal times: file order
    rating(A, "copied-reply", "dislike", 4, comment="no"),
    rating(A, "copied-reply", "dislike", 4, comment="no"),
    rating(A, "owned-reply", "like", 5),  # names conversation B's reply with conversation A's id
    rating(A, "dismissed-reply", "like", 6),
    rating(A, "confirmed-reply", "like", 7),
    rating(A, "fixme-reply", "dislike", 8),
]
FLAGS = [
    flag(A, "copied-reply", 10, "Harmful", "Inaccurate", comment="twice"),
    flag(A, "copied-reply", 10, "Harmful", "Inaccurate", comment="twice"),  # the same shard synced twice
    flag(A, "owned-reply", 11, "Off-topic"),  # another conversation's reply
    flag(A, "dismissed-reply", 12),
    flag(A, "confirmed-reply", 13),
    flag(A, "fixme-reply", 14, "Inaccurate"),
    flag(A, "tied-reply", 15, "Other", "Other"),  # a reason named twice counts once
]
REVIEWS = [
    review(A, "dismissed-reply", "dismissed", 20),
    review(A, "confirmed-reply", "dismissed", 21),
    review(A, "confirmed-reply", "confirmed", 22),  # latest wins
    review(A, "fixme-reply", "needs-fix", 23, fixed="a better reply"),
]
RECORDS: list[Record] = [*TURNS, *RATINGS, *FLAGS, *REVIEWS]

LATEST = {
    "undone-reply": None,
    "changed-reply": "like",
    "tied-reply": "like",
    "copied-reply": "dislike",
    "owned-reply": None,
    "dismissed-reply": "like",
    "confirmed-reply": "like",
    "fixme-reply": "dislike",
}
"""The rating that counts for each reply, by the rules."""


MIDS = [f"reply-{n:04d}" for n in range(5)]
OWNER = {mid: (A if n % 2 else B) for n, mid in enumerate(MIDS)}


def _conversation(owned: bool, mid: str) -> str:
    return OWNER[mid] if owned else ({A, B} - {OWNER[mid]}).pop()


OWNED = st.sampled_from([True, True, True, False])
"""Mostly a record naming the reply with its own conversation, sometimes with the other one."""
ratings_strategy = st.lists(
    st.builds(
        lambda mid, owned, value, minute, copies: [rating(_conversation(owned, mid), mid, value, minute)] * copies,
        st.sampled_from(MIDS),
        OWNED,
        st.sampled_from(["like", "dislike", None]),
        st.integers(0, 3),
        st.integers(1, 2),
    ),
    max_size=14,
)
flags_strategy = st.lists(
    st.builds(
        lambda mid, owned, reasons, minute, copies: [flag(_conversation(owned, mid), mid, minute, *reasons)] * copies,
        st.sampled_from(MIDS),
        OWNED,
        st.lists(st.sampled_from(["Harmful", "Inaccurate", "Other"]), min_size=1, max_size=3),
        st.integers(0, 3),
        st.integers(1, 2),
    ),
    max_size=8,
)
reviews_strategy = st.lists(
    st.builds(
        lambda mid, decision, minute, fixed: [review(OWNER[mid], mid, decision, minute, fixed)],
        st.sampled_from(MIDS),
        st.sampled_from(DECISIONS),
        st.integers(0, 3),
        st.sampled_from([None, "fixed"]),
    ),
    max_size=6,
)
deletions_strategy = st.lists(
    st.builds(
        lambda cid, minute: Deletion(conversation_id=cid, requested_by="user", timestamp=at(minute)),
        st.sampled_from([A, B, "conv-nobody00"]),
        st.integers(0, 3),
    ),
    max_size=2,
).filter(lambda deletions: {d.conversation_id for d in deletions} != {A, B})
"""No deletion (most often), one or two of conversation A, B or of one with no record; never both A and B
(nothing would be left to compare)."""


def interleaved(records: list[Record], deletions: list[Deletion], place: int) -> list[Record]:
    """``records`` with ``deletions`` inserted at ``place`` (modulo their number): a deletion record
    comes before some records of its conversation and after others."""
    place %= len(records) + 1
    return [*records[:place], *deletions, *records[place:]]


EVERY_STATUS = QueueFilter(status=None)


def sql_queue_and_stats(source, index_path=None, queue_filter=EVERY_STATUS):
    index = ReviewIndex(source, index_path)
    with index.connect() as con:
        return queue_page(con, source, queue_filter, limit=None), index_stats(con)


def same_stats(a: FeedbackStats, b: FeedbackStats) -> None:
    for name in ("ratings_per_day", "per_model", "conversation_lengths"):
        left, right = getattr(a, name), getattr(b, name)
        assert list(left.columns) == list(right.columns), name
        pd.testing.assert_frame_equal(
            left.reset_index(drop=True), right.reset_index(drop=True), check_dtype=False, obj=name
        )

    def reasons(s: FeedbackStats) -> dict:
        return dict(zip(s.flags_per_reason.reason, s.flags_per_reason["count"], strict=True))

    assert reasons(a) == reasons(b)
    assert list(a.flags_per_reason["count"]) == sorted(a.flags_per_reason["count"], reverse=True)
    assert a.open_queue == b.open_queue
