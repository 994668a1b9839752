"""``kto``: TRL's unpaired preference format, one row per rated reply, ``label`` true for a like.

{"prompt": [{"role": "user", "content": "Hi"}],
 "completion": [{"role": "assistant", "content": "Hello!"}], "label": true}
"""

from __future__ import annotations

from datasets import Features, Value

from feedback.export.engine import assistant
from feedback.export.formats.spec import LIKED, ReplyFormat, kept_negatives_card, left_out_of_training
from feedback.features import CHAT, STRING

COLUMNS = {
    "prompt": "prompt",
    "completion": assistant("response"),
    "label": LIKED,
    "conversation_id": "conversation_id",
    "message_id": "message_id",
}

FORMAT = ReplyFormat(
    name="kto",
    order=30,
    features=Features({"prompt": CHAT, "completion": CHAT, "label": Value("bool")}),
    id_features=Features({"conversation_id": STRING, "message_id": STRING}),
    left_out=lambda options: left_out_of_training(options, positive=LIKED),
    columns=COLUMNS,
    card=lambda options: (
        "TRL *unpaired preference* format (`prompt`, `completion`, `label`): one row per rated reply, "
        "`label` true for a like and false for a dislike." + kept_negatives_card(options, "`label` false")
    ),
    reports_balance=True,
)
