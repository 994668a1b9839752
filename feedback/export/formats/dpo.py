"""``dpo``: TRL's preference format with an explicit prompt, a liked and a disliked reply to one prompt.

    {"prompt": [{"role": "user", "content": "Hi"}],
     "chosen": [{"role": "assistant", "content": "Hello!"}],
     "rejected": [{"role": "assistant", "content": "Go away."}]}

Pairs: replies to the same prompt (equal messages) in one conversation (or any, with
``cross_conversation``); every liked x disliked pair, or with ``pairs="latest"`` one pair per prompt
(``feedback.export.rows``). A reviewer's corrected reply is ``chosen`` against the flagged reply
(``chosen_id`` null).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datasets import Features

from feedback.export.engine import assistant
from feedback.export.formats.spec import LIKED, PairFormat, kept_negatives_card, left_out_of_training
from feedback.features import CHAT, STRING

if TYPE_CHECKING:
    from feedback.export.options import ExportOptions


def _left_out(options: ExportOptions) -> dict[str, str]:
    masks = left_out_of_training(options, positive=LIKED)
    if not options.cross_conversation:
        masks["no_opposite_rating"] = "NOT mixed"
    return masks


COLUMNS = {
    "prompt": "chosen_prompt",
    "chosen": assistant("chosen_response"),
    "rejected": assistant("rejected_response"),
    "conversation_id": "chosen_conversation_id",
    "chosen_id": "chosen_message_id",
    "rejected_id": "rejected_message_id",
}


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
    columns=COLUMNS,
    card=_card,
)
