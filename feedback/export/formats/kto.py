"""``kto``: TRL's unpaired preference format, one row per rated reply, ``label`` true for a like.

{"prompt": [{"role": "user", "content": "Hi"}],
 "completion": [{"role": "assistant", "content": "Hello!"}], "label": true}
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Features, Value

from feedback.arrow import single_array
from feedback.export.formats.messages import assistant_messages
from feedback.export.formats.spec import ReplyFormat, kept_negatives_card, left_out_of_training, liked
from feedback.features import CHAT, STRING
from feedback.rules import LIKE, Verdicts


def _rows(replies: pa.Table, verdicts: Verdicts) -> pa.Table:
    return pa.table(
        {
            "prompt": replies["prompt"],
            "completion": assistant_messages(single_array(replies["response"])),
            "label": pc.equal(replies["rating"], LIKE),
            "conversation_id": replies["conversation_id"],
            "message_id": replies["message_id"],
        }
    )


FORMAT = ReplyFormat(
    name="kto",
    order=30,
    features=Features({"prompt": CHAT, "completion": CHAT, "label": Value("bool")}),
    id_features=Features({"conversation_id": STRING, "message_id": STRING}),
    left_out=lambda replies, options: left_out_of_training(replies, options, positive=liked(replies)),
    rows=_rows,
    card=lambda options: (
        "TRL *unpaired preference* format (`prompt`, `completion`, `label`): one row per rated reply, "
        "`label` true for a like and false for a dislike." + kept_negatives_card(options, "`label` false")
    ),
    reports_balance=True,
)
