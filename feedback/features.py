"""Explicit ``datasets.Features`` of the stored records and of the exported rows, in one place.

JSON shards cannot be typed by inference: a column that is null in every line of one shard
(``option``, ``comment``, ``regenerated_from``) and a string in another, an empty ``files`` list
(``list<null>``) or a ``params`` struct of nulls make ``datasets``/``pyarrow`` guess different
types per shard and then fail to combine them. Reading with these features never guesses.

The record features mirror ``schemas.records`` field for field (a test checks the names), and
the export features are TRL's conversational dataset formats
(https://huggingface.co/docs/trl/dataset_formats):

* ``sft``: language modeling, ``messages``.
* ``dpo``: preference with an explicit prompt, ``prompt`` / ``chosen`` / ``rejected``.
* ``kto``: unpaired preference, ``prompt`` / ``completion`` / ``label`` (bool).
* ``flags``: the review queue, prompt-completion plus why and how often the reply was flagged.

>>> record_schema("ratings", ["message_id", "rating"])
message_id: string
rating: string
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from datasets import Features, List, Value

STRING = Value("string")
TIMESTAMP = Value("timestamp[us, tz=UTC]")
"""Record times: timezone-aware UTC, microseconds (pydantic writes ``...T07:15:00.123456Z``)."""

CHAT_MESSAGE = {"role": STRING, "content": STRING, "files": List(STRING)}
"""``schemas.records.ChatMessage``: OpenAI/TRL message plus the data-dir paths of its files."""

_COMMON = {"schema_version": Value("int64"), "timestamp": TIMESTAMP, "conversation_id": STRING}

TURN_FEATURES = Features(
    {
        **_COMMON,
        "message_id": STRING,
        "turn_index": Value("int64"),
        "messages": List(CHAT_MESSAGE),
        "response": STRING,
        "model": STRING,
        "params": {
            "temperature": Value("float64"),
            "top_p": Value("float64"),
            "max_tokens": Value("int64"),
            "seed": Value("int64"),
            "inputs": List({"name": STRING, "value": STRING}),
        },
        "latency_ms": Value("float64"),
        "regenerated_from": STRING,
        "edited_from": STRING,
        "source": STRING,
    }
)
RATING_FEATURES = Features(
    {**_COMMON, "message_id": STRING, "rating": STRING, "option": STRING, "comment": STRING, "source": STRING}
)
FLAG_FEATURES = Features(
    {**_COMMON, "message_id": STRING, "reasons": List(STRING), "comment": STRING, "source": STRING}
)
REVIEW_FEATURES = Features(
    {**_COMMON, "message_id": STRING, "decision": STRING, "corrected_reply": STRING, "note": STRING, "reviewer": STRING}
)
RECORD_FEATURES: dict[str, Features] = {
    "turns": TURN_FEATURES, "ratings": RATING_FEATURES, "flags": FLAG_FEATURES, "reviews": REVIEW_FEATURES,
}
"""Features of each record kind, by data-dir folder name (as ``schemas.records.RECORD_TYPES``)."""

TRL_MESSAGE = {"role": STRING, "content": STRING}
"""A message in TRL's conversational format: role and string content, nothing else."""
CHAT = List(TRL_MESSAGE)

EXPORT_FEATURES: dict[str, Features] = {
    "sft": Features({"messages": CHAT}),
    "dpo": Features({"prompt": CHAT, "chosen": CHAT, "rejected": CHAT}),
    "kto": Features({"prompt": CHAT, "completion": CHAT, "label": Value("bool")}),
    "flags": Features(
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
    ),
}
"""Columns of each export format, in output order (without the optional id columns)."""

ID_FEATURES: dict[str, Features] = {
    "sft": Features({"conversation_id": STRING, "message_id": STRING}),
    "dpo": Features({"conversation_id": STRING, "chosen_id": STRING, "rejected_id": STRING}),
    "kto": Features({"conversation_id": STRING, "message_id": STRING}),
    "flags": Features({}),
}
"""Columns added by ``include_ids=True``: where each row came from. (``flags`` always has them;
a cross-conversation DPO pair names the conversation of its chosen reply.)"""


def record_schema(kind: str, columns: Sequence[str] | None = None) -> pa.Schema:
    """The Arrow schema of a record kind, optionally only ``columns`` (in that order).

    Raises:
        KeyError: for an unknown kind or column.
    """
    schema = RECORD_FEATURES[kind].arrow_schema
    if columns is None:
        return schema.remove_metadata()
    return pa.schema([schema.field(name) for name in columns])


def export_features(fmt: str, *, include_ids: bool = False) -> Features:
    """The ``datasets.Features`` of an export format's rows (with the id columns if asked).

    Raises:
        KeyError: for an unknown format.
    """
    features = dict(EXPORT_FEATURES[fmt])
    if include_ids:
        features.update(ID_FEATURES[fmt])
    return Features(features)
