"""``flags``: the review queue, every flagged reply with its prompt, flags and latest rating.

    {"prompt": [...], "completion": [...], "conversation_id": ..., "message_id": ..., "model": ...,
     "replied_at": ..., "rating": "like", ..., "flag_count": 3,
     "reasons": [{"reason": "Harmful", "count": 2}, ...], "comments": [...], ...}

Every flag counts, a dismissed one too: the queue shows what reviewers decided on.
"""

from __future__ import annotations

from datasets import Features, List, Value

from feedback.export.engine import assistant, iso_time
from feedback.export.formats.spec import ReplyFormat
from feedback.features import CHAT, STRING, TIMESTAMP

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
COLUMNS = {
    "prompt": "prompt",
    "completion": assistant("response"),
    "conversation_id": "conversation_id",
    "message_id": "message_id",
    "model": "model",
    "replied_at": iso_time("timestamp"),
    "rating": "rating_name",
    "rating_option": "rating_option",
    "rating_comment": "rating_comment",
    "flag_count": "flag_count",
    "reasons": "reasons",
    "comments": "comments",
    "first_flagged_at": iso_time("first_flagged_at"),
    "last_flagged_at": iso_time("last_flagged_at"),
}
"""Each column's SQL: the reply, its latest rating and its flag summary (``feedback.export.engine.judge``)."""


FORMAT = ReplyFormat(
    name="flags",
    order=40,
    features=FEATURES,
    id_features=Features({}),  # its ids are columns already
    left_out=lambda options: {"not_flagged": "NOT flagged"},
    columns=COLUMNS,
    with_verdicts=True,
    card=lambda options: (
        "A review queue: every flagged reply with its prompt, the reasons and comments of its flags, "
        "its latest rating and how often it was flagged."
    ),
    lists_every_flag=True,
    counts_agreement=False,  # its rows name their reply: never identical
)
