"""Rows of each format, built in Arrow from candidate replies (TRL conversational dataset formats).

A prompt is the list of messages the model saw; a completion is a list of one assistant message
(https://huggingface.co/docs/trl/dataset_formats)::

    sft    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
    dpo    {"prompt": [{"role": "user", "content": "Hi"}],
            "chosen": [{"role": "assistant", "content": "Hello!"}],
            "rejected": [{"role": "assistant", "content": "Go away."}]}
    kto    {"prompt": [{"role": "user", "content": "Hi"}],
            "completion": [{"role": "assistant", "content": "Hello!"}], "label": true}
    flags  {"prompt": [...], "completion": [...], "conversation_id": ..., "message_id": ..., "model": ...,
            "replied_at": ..., "rating": "like", ..., "flag_count": 3,
            "reasons": [{"reason": "Harmful", "count": 2}, ...], "comments": [...], ...}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from feedback.export.arrow import single_array
from feedback.export.verdicts import LIKE
from feedback.features import export_features

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
FLAG_SUMMARY = ("rating", "rating_option", "rating_comment", "flag_count", "reasons", "comments",
                "first_flagged_at", "last_flagged_at")
"""Columns of a flags row taken from the reply's flag summary (``verdicts.Verdicts.flags``)."""


def assistant_messages(responses: pa.Array) -> pa.ListArray:
    """Each response as a list of one ``{"role": "assistant", "content": response}`` message."""
    roles = pa.array(np.full(len(responses), "assistant", dtype=object), pa.string())
    values = pa.StructArray.from_arrays([roles, responses], fields=list(MESSAGE))
    return pa.ListArray.from_arrays(pa.array(np.arange(len(responses) + 1, dtype=np.int32)), values)


def append_assistant(prompts: pa.ListArray, responses: pa.Array) -> pa.ListArray:
    """Each prompt with its response appended as an assistant message (the SFT ``messages``)."""
    flat = prompts.flatten()
    lengths = pc.list_value_length(prompts).to_numpy() + 1
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    order = np.empty(offsets[-1], dtype=np.int64)
    parents = pc.list_parent_indices(prompts).to_numpy()
    order[np.arange(len(flat)) + parents] = np.arange(len(flat))  # row r's messages move r places on,
    order[offsets[1:] - 1] = len(flat) + np.arange(len(prompts))  # then comes its reply
    values = pa.concat_arrays([flat, assistant_messages(responses).flatten()]).take(pa.array(order))
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)


def sft_table(replies: pa.Table) -> pa.Table:
    """SFT rows (``messages``) of candidate replies, with their ids."""
    return pa.table({
        "messages": append_assistant(single_array(replies["prompt"]), single_array(replies["response"])),
        "conversation_id": replies["conversation_id"],
        "message_id": replies["message_id"],
    })


def kto_table(replies: pa.Table) -> pa.Table:
    """KTO rows (``prompt``, ``completion``, ``label``: liked) of rated replies, with their ids."""
    return pa.table({
        "prompt": replies["prompt"],
        "completion": assistant_messages(single_array(replies["response"])),
        "label": pc.equal(replies["rating"], LIKE),
        "conversation_id": replies["conversation_id"],
        "message_id": replies["message_id"],
    })


def dpo_table(chosen: pa.Table, rejected: pa.Table) -> pa.Table:
    """DPO rows (explicit ``prompt``, ``chosen``, ``rejected``) of aligned chosen and rejected replies."""
    return pa.table({
        "prompt": chosen["prompt"],
        "chosen": assistant_messages(single_array(chosen["response"])),
        "rejected": assistant_messages(single_array(rejected["response"])),
        "conversation_id": chosen["conversation_id"],
        "chosen_id": chosen["message_id"],
        "rejected_id": rejected["message_id"],
    })


def flags_table(replies: pa.Table, flags: dict[str, dict[str, Any]]) -> pa.Table:
    """Review-queue rows of flagged replies: prompt, completion, ids, latest rating and flag summary.

    Args:
        replies: flagged candidate replies.
        flags: reply key -> flag summary with the latest rating (``verdicts.Verdicts.flags``).
    """
    schema = export_features("flags").arrow_schema
    summaries = [flags[key] for key in replies["key"].to_pylist()]
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
