"""``sft``: the liked replies (and reviewers' corrections) for ``SFTTrainer``, in TRL's conversational
*prompt-completion* format, so the loss is on the reply only:

    {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
     "completion": [{"role": "assistant", "content": "Hello!"}]}

``prompt`` is the conversation the model saw, up to the user message (the system message first
when the turn had one); ``completion`` the liked reply as a one-message assistant list. A reviewer's
corrected reply makes a row too: the flagged reply's prompt, the correction as the completion.

With ``messages`` (``--messages``) the rows are TRL's *language modeling* format instead, the
prompt and the reply in one list, on every token of which ``SFTTrainer`` computes the loss:

    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from datasets import Features

from feedback.export.engine import assistant
from feedback.export.formats.spec import ReplyFormat, left_out_of_training
from feedback.features import CHAT, STRING

if TYPE_CHECKING:
    from feedback.export.options import ExportOptions


def _left_out(options: ExportOptions) -> dict[str, str]:
    masks = left_out_of_training(options, positive="true")
    if options.include_unrated:
        del masks["unrated"]
    return {**masks, "disliked": "rating = -1"}


IDS = {name: name for name in ("conversation_id", "message_id", "corrected_id")}
PROMPT_COMPLETION = {"prompt": "prompt", "completion": assistant("response"), **IDS}
MESSAGES_COLUMNS = {"messages": f"list_concat(prompt, {assistant('response')})", **IDS}


def _which(options: ExportOptions) -> str:
    unrated = " and every unrated one" if options.include_unrated else ""
    return (
        f"every liked reply{unrated}, and every reply a reviewer corrected (the flagged reply's prompt, "
        "the correction as the reply)"
    )


def _prompt_completion_card(options: ExportOptions) -> str:
    return (
        "TRL *prompt-completion* format, conversational (`prompt`, `completion`): the conversation the model "
        "saw up to the user message (the system message first when there was one) and the reply as a "
        f"one-message assistant list, for {_which(options)}. `SFTTrainer` computes the loss on the completion "
        "only."
    )


def _messages_card(options: ExportOptions) -> str:
    return (
        "TRL *language modeling* format (`messages`, exported with `--messages`): the prompt the model saw "
        f"plus its reply, for {_which(options)}. `SFTTrainer` computes the loss on every token of a row, the "
        "prompt's too."
    )


ID_FEATURES = Features({"conversation_id": STRING, "message_id": STRING, "corrected_id": STRING})
"""``message_id``: the liked reply (null for a correction); ``corrected_id``: the flagged reply a
reviewer's correction replaces (null for a logged reply)."""

MESSAGES = ReplyFormat(
    name="sft",
    order=10,
    features=Features({"messages": CHAT}),
    id_features=ID_FEATURES,
    left_out=_left_out,
    columns=MESSAGES_COLUMNS,
    card=_messages_card,
    takes_corrections=True,
)
"""``sft`` with ``messages``: TRL's language-modeling format."""

FORMAT = replace(
    MESSAGES,
    features=Features({"prompt": CHAT, "completion": CHAT}),
    columns=PROMPT_COMPLETION,
    card=_prompt_completion_card,
    variant=lambda options: MESSAGES if options.messages else None,
)
