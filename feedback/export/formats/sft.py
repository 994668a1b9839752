"""``sft``: TRL's language-modeling format, the prompt the model saw plus its reply, for liked replies.

    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from datasets import Features

from feedback.arrow import single_array
from feedback.export.formats.messages import append_assistant
from feedback.export.formats.spec import ReplyFormat, left_out_of_training
from feedback.features import CHAT, STRING
from feedback.rules import DISLIKE, ReplyVerdicts, Verdicts

if TYPE_CHECKING:
    from feedback.export.options import ExportOptions


def _left_out(replies: ReplyVerdicts, options: ExportOptions) -> dict[str, np.ndarray]:
    masks = left_out_of_training(replies, options, positive=np.ones(len(replies.rating), dtype=bool))
    if options.include_unrated:
        del masks["unrated"]
    return {**masks, "disliked": replies.rating == DISLIKE}


def _rows(replies: pa.Table, verdicts: Verdicts) -> pa.Table:
    return pa.table({
        "messages": append_assistant(single_array(replies["prompt"]), single_array(replies["response"])),
        "conversation_id": replies["conversation_id"],
        "message_id": replies["message_id"],
    })


FORMAT = ReplyFormat(
    name="sft",
    order=10,
    features=Features({"messages": CHAT}),
    id_features=Features({"conversation_id": STRING, "message_id": STRING}),
    left_out=_left_out,
    rows=_rows,
    card=lambda options: (
        "TRL *language modeling* format (`messages`): the prompt the model saw plus its reply, for every "
        f"liked reply{' and every unrated one' if options.include_unrated else ''}."
    ),
)
