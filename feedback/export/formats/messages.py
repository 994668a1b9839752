"""TRL conversational messages built in Arrow: the pieces every format's rows are made of.

A prompt is the list of messages the model saw (``feedback.export.replies`` converts it); a
completion is a list of one assistant message (https://huggingface.co/docs/trl/dataset_formats).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
"""A message in TRL's conversational format: role and string content."""


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
