"""``flags``: the review queue, every flagged reply with its prompt, flags and latest rating.

    {"prompt": [...], "completion": [...], "conversation_id": ..., "message_id": ..., "model": ...,
     "replied_at": ..., "rating": "like", ..., "flag_count": 3,
     "reasons": [{"reason": "Harmful", "count": 2}, ...], "comments": [...], ...}

Every flag counts, a dismissed one too: the queue shows what reviewers decided on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from datasets import Features, List, Value

from feedback.arrow import single_array
from feedback.export.formats.messages import assistant_messages
from feedback.export.formats.spec import ReplyFormat
from feedback.features import CHAT, STRING, TIMESTAMP

if TYPE_CHECKING:
    from feedback.rules import Verdicts

FEATURES = Features(
    {
        "prompt": CHAT,
        "completion": CHAT,
        "conversation_id": STRING,
        "message_id": STRING,
        "model": STRING,
        "replied_at": TIMESTAMP,
        "rating": STRING,
        "rating_option": STRING,
        "rating_comment": STRING,
        "flag_count": Value("int64"),
        "reasons": List({"reason": STRING, "count": Value("int64")}),
        "comments": List(STRING),
        "first_flagged_at": TIMESTAMP,
        "last_flagged_at": TIMESTAMP,
    }
)
FLAG_SUMMARY = (
    "rating",
    "rating_option",
    "rating_comment",
    "flag_count",
    "reasons",
    "comments",
    "first_flagged_at",
    "last_flagged_at",
)
"""Columns taken from the reply's flag summary (``feedback.rules.Verdicts.flags``)."""


def _rows(replies: pa.Table, verdicts: Verdicts) -> pa.Table:
    """Prompt, completion, ids, latest rating and flag summary of flagged replies."""
    schema = FEATURES.arrow_schema
    summaries = [verdicts.flags[key] for key in replies["key"].to_pylist()]
    columns = {
        "prompt": replies["prompt"],
        "completion": assistant_messages(single_array(replies["response"])),
        "conversation_id": replies["conversation_id"],
        "message_id": replies["message_id"],
        "model": replies["model"],
        "replied_at": replies["timestamp"],
    }
    for name in FLAG_SUMMARY:
        columns[name] = pa.array([summary[name] for summary in summaries], schema.field(name).type)
    return pa.table(columns)


FORMAT = ReplyFormat(
    name="flags",
    order=40,
    features=FEATURES,
    id_features=Features({}),  # its ids are columns already
    left_out=lambda replies, options: {"not_flagged": ~replies.flagged},
    rows=_rows,
    card=lambda options: (
        "A review queue: every flagged reply with its prompt, the reasons and comments of its flags, "
        "its latest rating and how often it was flagged."
    ),
    lists_every_flag=True,
    counts_agreement=False,  # its rows name their reply: never identical
)
