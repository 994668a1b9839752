"""``dpo``: TRL's preference format with an explicit prompt, a liked and a disliked reply to one prompt.

    {"prompt": [{"role": "user", "content": "Hi"}],
     "chosen": [{"role": "assistant", "content": "Hello!"}],
     "rejected": [{"role": "assistant", "content": "Go away."}]}

Pairs: replies to the same prompt (equal messages) in one conversation (or any, with
``cross_conversation``); every liked x disliked pair, or with ``pairs="latest"`` one pair per prompt
(``feedback.export.pairs``). A reviewer's corrected reply is ``chosen`` against the flagged reply
(``chosen_id`` null).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from datasets import Features

from feedback.arrow import single_array
from feedback.export.formats.messages import assistant_messages
from feedback.export.formats.spec import PairFormat, kept_negatives_card, left_out_of_training, liked
from feedback.features import CHAT, STRING
from feedback.rules import ReplyVerdicts

if TYPE_CHECKING:
    import numpy as np

    from feedback.export.options import ExportOptions


def _left_out(replies: ReplyVerdicts, options: ExportOptions) -> dict[str, np.ndarray]:
    masks = left_out_of_training(replies, options, positive=liked(replies))
    if not options.cross_conversation:
        masks["no_opposite_rating"] = ~replies.in_mixed_conversation
    return masks


def _rows(chosen: pa.Table, rejected: pa.Table) -> pa.Table:
    return pa.table(
        {
            "prompt": chosen["prompt"],
            "chosen": assistant_messages(single_array(chosen["response"])),
            "rejected": assistant_messages(single_array(rejected["response"])),
            "conversation_id": chosen["conversation_id"],
            "chosen_id": chosen["message_id"],
            "rejected_id": rejected["message_id"],
        }
    )


def _card(options: ExportOptions) -> str:
    where = (
        "in the same conversation or, with `--cross-conversation`, in any"
        if options.cross_conversation
        else "in the same conversation"
    )
    how_many = (
        "one pair per prompt (`--pairs latest`): the latest liked reply against the latest disliked one"
        if options.pairs == "latest"
        else "every liked reply against every disliked one (`--pairs all`): a reply and three regenerations "
        "rated dislike, like, dislike, like give four pairs"
    )
    return (
        "TRL *preference* format with an explicit prompt (`prompt`, `chosen`, `rejected`): two replies to the "
        f"same prompt (the same messages, {where}), one liked and one disliked (latest rating of each); "
        f"{how_many}. A reviewer's corrected reply is `chosen` against the flagged reply it corrects."
        f"{kept_negatives_card(options, '`rejected`')}"
    )


FORMAT = PairFormat(
    name="dpo",
    order=20,
    features=Features({"prompt": CHAT, "chosen": CHAT, "rejected": CHAT}),
    id_features=Features({"conversation_id": STRING, "chosen_id": STRING, "rejected_id": STRING}),
    left_out=_left_out,
    rows=_rows,
    card=_card,
)
