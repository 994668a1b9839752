"""The ``flagged`` config of a dataset repo: the review queue as a table, so the Hub's dataset viewer is
a read-only review queue and its SQL console can answer review questions without a join.

One row per flagged reply (the queue of :mod:`feedback.review.queue`, every status, newest flag first; a
conversation a deletion record names is not in it, see ``feedback.rules``):
the conversation up to the reply, the reply, its ratings, every flag reason and comment, and the latest
review. Written by compaction (:mod:`feedback.hub.compact`) as ``flagged/flagged-*.parquet``, replacing
the previous ones in the same commit; it is a snapshot as of that commit, derived from the records.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from datasets import Features, List, Value

from feedback.features import STRING, TIMESTAMP
from feedback.review.queue import QueueItem

FLAGGED_FEATURES = Features(
    {
        "conversation_id": STRING,
        "message_id": STRING,
        "model": STRING,
        "turn_index": Value("int64"),
        "replied_at": TIMESTAMP,
        "messages": List({"role": STRING, "content": STRING}),
        "response": STRING,
        "rating": STRING,
        "ratings": List({"rating": STRING, "option": STRING, "comment": STRING, "timestamp": TIMESTAMP}),
        "flag_count": Value("int64"),
        "reasons": List({"reason": STRING, "count": Value("int64")}),
        "flag_comments": List(STRING),
        "first_flagged_at": TIMESTAMP,
        "last_flagged_at": TIMESTAMP,
        "status": STRING,
        "decision": STRING,
        "reviewer": STRING,
        "corrected_reply": STRING,
        "review_note": STRING,
        "reviewed_at": TIMESTAMP,
    }
)
"""Columns of the ``flagged`` config (``status``: ``open`` or the latest decision)."""
FLAGGED_DOCS = [
    ("conversation_id, message_id", "the flagged reply"),
    ("model, turn_index, replied_at", "who answered, where in the conversation, when"),
    ("messages", "the conversation up to the reply (role, content), ending with the user message"),
    ("response", "the flagged reply"),
    ("rating", "its latest rating (like, dislike; null: unrated or undone)"),
    ("ratings", "every rating event (rating, option, comment, timestamp), identical copies once"),
    ("flag_count, reasons, flag_comments", "flags, flags per reason (most named first), their comments"),
    ("first_flagged_at, last_flagged_at", "when it was first and last flagged (UTC)"),
    ("status", "open, or the latest review decision: confirmed, dismissed, needs-fix"),
    ("decision, reviewer, corrected_reply, review_note, reviewed_at", "the latest review (null: none yet)"),
]


def flagged_row(item: QueueItem) -> dict:
    """One row of the ``flagged`` config."""
    review = item.review
    return {
        "conversation_id": item.turn.conversation_id,
        "message_id": item.turn.message_id,
        "model": item.turn.model,
        "turn_index": item.turn.turn_index,
        "replied_at": item.turn.timestamp,
        "messages": [m.to_openai() for m in item.turn.messages],
        "response": item.turn.response,
        "rating": item.rating,
        "ratings": [
            {"rating": r.rating, "option": r.option, "comment": r.comment, "timestamp": r.timestamp}
            for r in item.ratings
        ],
        "flag_count": len(item.flags),
        "reasons": [{"reason": reason, "count": n} for reason, n in item.reason_counts.items()],
        "flag_comments": [f.comment for f in item.flags if f.comment],
        "first_flagged_at": item.flags[0].timestamp,
        "last_flagged_at": item.last_flagged,
        "status": item.status,
        "decision": review.decision if review else None,
        "reviewer": review.reviewer if review else None,
        "corrected_reply": review.corrected_reply if review else None,
        "review_note": review.note if review else None,
        "reviewed_at": review.timestamp if review else None,
    }


def flagged_table(items: Iterable[QueueItem]) -> pa.Table:
    """The ``flagged`` rows of queue items, typed by :data:`FLAGGED_FEATURES`."""
    return pa.Table.from_pylist([flagged_row(item) for item in items], schema=FLAGGED_FEATURES.arrow_schema)
