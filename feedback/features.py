"""Explicit ``datasets.Features`` of the stored records, and the types the exported rows are made of.

JSON shards cannot be typed by inference: a column that is null in every line of one shard
(``option``, ``comment``, ``regenerated_from``) and a string in another, an empty ``files`` list
(``list<null>``) or a ``params`` struct of nulls make ``datasets``/``pyarrow`` guess different
types per shard and then fail to combine them. Reading with these features never guesses.

The record features mirror ``schemas.records`` field for field (a test checks the names). The
features of each export format (TRL's conversational dataset formats,
https://huggingface.co/docs/trl/dataset_formats) are in its spec, ``feedback.export.formats``,
built from :data:`CHAT` (a list of TRL messages), :data:`STRING` and :data:`TIMESTAMP`.

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
DELETION_FEATURES = Features({**_COMMON, "requested_by": STRING, "reviewer": STRING})
RECORD_FEATURES: dict[str, Features] = {
    "turns": TURN_FEATURES,
    "ratings": RATING_FEATURES,
    "flags": FLAG_FEATURES,
    "reviews": REVIEW_FEATURES,
    "deletions": DELETION_FEATURES,
}
"""Features of each record kind, by data-dir folder name (as ``schemas.records.RECORD_TYPES``)."""

TRL_MESSAGE = {"role": STRING, "content": STRING}
"""A message in TRL's conversational format: role and string content, nothing else."""
CHAT = List(TRL_MESSAGE)
"""A list of TRL messages: a prompt, a completion or a whole chat."""


def record_schema(kind: str, columns: Sequence[str] | None = None) -> pa.Schema:
    """The Arrow schema of a record kind, optionally only ``columns`` (in that order).

    Raises:
        KeyError: for an unknown kind or column.
    """
    schema = RECORD_FEATURES[kind].arrow_schema
    if columns is None:
        return schema.remove_metadata()
    return pa.schema([schema.field(name) for name in columns])
