"""From turn records to the replies an export can use, one shard at a time.

Each shard's turns get a *status*: the first reason, in :data:`STATUSES` order, why the reply is
not a candidate row, or ``kept``. Only the kept replies keep their text (prompt and response),
so an export holds in memory the part of the log it needs, not the whole log; every reply keeps
a small status row, so the counts of what was dropped and why are exact after deduplication.

The prompt is converted here to TRL's conversational format: role and content only. A message
with files gets the text the model saw (``ChatMessage.to_openai``): its content, a blank line,
then one ``[attached file: files/<sha256>.<ext>]`` line per file.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from feedback.arrow import bool_numpy, single_array
from feedback.export.options import ExportOptions
from feedback.rules import Verdicts, first_copies

if TYPE_CHECKING:
    from feedback.export.formats import ExportFormat

TURN_COLUMNS = ["conversation_id", "message_id", "timestamp", "model", "messages", "response"]

STATUSES = (
    "kept",
    "deleted",  # its conversation was deleted (a deletion record names it): out of every format, whatever else holds
    "incomplete",  # a required field is missing or null
    "other_model",  # --model given and the reply is of another model
    "outside_dates",  # before --since or not before --until
    "not_flagged",  # flags: the reply was never flagged
    "flagged",  # sft/dpo/kto without --keep-flagged (a flag a reviewer dismissed does not count)
    "confirmed_flag",  # a reviewer confirmed the flag: out of sft, and of kto/dpo when liked, even with --keep-flagged
    "disliked",  # sft: the latest rating is a dislike
    "unrated",  # no rating, or the latest was undone (sft without --include-unrated, dpo, kto)
    "no_opposite_rating",  # dpo: no liked and disliked reply to the same prompt
)
"""Why a reply is left out, the first reason winning. Formats name theirs (``ExportFormat.left_out``)."""
STATUS = {name: code for code, name in enumerate(STATUSES)}


def reply_statuses(left_out: dict[str, np.ndarray], count: int) -> np.ndarray:
    """The status code of each of ``count`` replies (int8): the earliest reason in :data:`STATUSES`
    whose mask in ``left_out`` is set, else ``kept`` (0).

    Raises:
        ValueError: for a reason that is not in :data:`STATUSES`.
    """
    unknown = set(left_out) - set(STATUSES[1:])
    if unknown:
        raise ValueError(f"unknown reasons to leave a reply out: {sorted(unknown)}; expected some of {STATUSES[1:]}")
    status = np.zeros(count, dtype=np.int8)
    for code in range(len(STATUSES) - 1, 0, -1):  # the earliest reason is written last
        if STATUSES[code] in left_out:
            status[left_out[STATUSES[code]]] = code
    return status


def select_replies(
    turns: pa.Table, verdicts: Verdicts, spec: ExportFormat, options: ExportOptions
) -> tuple[pa.Table, pa.Table]:
    """Split one shard's turns (``TURN_COLUMNS``) into status rows and candidate replies of format ``spec``.

    Returns:
        ``(statuses, candidates)``: ``statuses`` has one row per turn (``key``, ``status``,
        ``rating``, ``flagged``, ``has_files``); ``candidates`` the kept turns with ``key``,
        ``conversation_id``, ``message_id``, ``timestamp``, ``model``, ``prompt`` (TRL messages),
        ``response``, ``rating`` (int8 code), ``has_files``, ``pairable`` (kept: a row, or a reply
        for rating pairs) and ``correction`` (formats that ``takes_corrections``: a reviewer's
        corrected reply, else null).
    """
    replies = verdicts.replies(turns)
    keys = replies.keys
    prompt, has_files, bad_messages = trl_messages(turns["messages"])
    status = reply_statuses(
        {
            **spec.left_out(replies, options),
            "deleted": replies.deleted,
            "incomplete": _incomplete(turns, keys) | bad_messages,
            "other_model": _other_model(turns, options.models),
            "outside_dates": _outside_dates(turns, options.since, options.until),
        },
        turns.num_rows,
    )
    flagged = replies.flagged if spec.lists_every_flag else replies.flag_stands
    statuses = pa.table(
        {"key": keys, "status": status, "rating": replies.rating, "flagged": flagged, "has_files": has_files}
    )
    correction = replies.correction if spec.takes_corrections else pa.nulls(turns.num_rows, pa.string())
    pairable = status == STATUS["kept"]
    usable = ~np.isin(status, [STATUS["deleted"], STATUS["incomplete"], STATUS["other_model"], STATUS["outside_dates"]])
    corrected = bool_numpy(pc.is_valid(correction)) & usable  # a reviewer's fix pairs with its reply
    candidates = pa.table(
        {
            "key": keys,
            "conversation_id": turns["conversation_id"],
            "message_id": turns["message_id"],
            "timestamp": turns["timestamp"],
            "model": turns["model"],
            "prompt": prompt,
            "response": turns["response"],
            "rating": replies.rating,
            "has_files": has_files,
            "pairable": pairable,
            "correction": correction,
        }
    ).filter(pa.array(pairable | corrected))
    return statuses, candidates


def _incomplete(turns: pa.Table, keys: pa.Array) -> np.ndarray:
    missing = pc.or_(pc.is_null(keys), pc.is_null(turns["timestamp"]))
    missing = pc.or_(missing, pc.or_(pc.is_null(turns["response"]), pc.is_null(turns["messages"])))
    missing = pc.or_(missing, pc.equal(pc.fill_null(pc.list_value_length(turns["messages"]), 0), 0))
    return bool_numpy(missing)


def _other_model(turns: pa.Table, models: tuple[str, ...]) -> np.ndarray:
    if not models:
        return np.zeros(turns.num_rows, dtype=bool)
    return ~bool_numpy(pc.fill_null(pc.is_in(turns["model"], pa.array(models, pa.string())), False))


def _outside_dates(turns: pa.Table, since: datetime | None, until: datetime | None) -> np.ndarray:
    outside = np.zeros(turns.num_rows, dtype=bool)
    kind = turns.schema.field("timestamp").type
    if since is not None:
        outside |= bool_numpy(pc.fill_null(pc.less(turns["timestamp"], pa.scalar(since, kind)), False))
    if until is not None:
        outside |= bool_numpy(pc.fill_null(pc.greater_equal(turns["timestamp"], pa.scalar(until, kind)), False))
    return outside


def trl_messages(messages: pa.ChunkedArray | pa.Array) -> tuple[pa.ListArray, np.ndarray, np.ndarray]:
    """Stored messages (``role``, ``content``, ``files``) as TRL messages (``role``, ``content``).

    Returns:
        ``(messages, has_files, bad)``: the converted lists (null where the input was), per row
        whether any message had files, and per row whether a message lacks a role or content.
    """
    messages = single_array(messages)
    lengths = pc.fill_null(pc.list_value_length(messages), 0).to_numpy()
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    role, content, files = messages.flatten().flatten()
    file_counts = pc.fill_null(pc.list_value_length(files), 0)
    with_files = pc.greater(file_counts, 0)
    parents = pc.list_parent_indices(messages).to_numpy()
    has_files = np.zeros(len(messages), dtype=bool)
    has_files[parents[with_files.to_numpy(zero_copy_only=False)]] = True
    if has_files.any():
        content = _with_file_lines(content, files, with_files)
    bad = np.zeros(len(messages), dtype=bool)
    bad[parents[bool_numpy(pc.or_(pc.is_null(role), pc.is_null(content)))]] = True
    values = pa.StructArray.from_arrays([role, content], names=["role", "content"])
    converted = pa.ListArray.from_arrays(offsets, values, mask=pc.is_null(messages))
    return converted, has_files, bad


def _with_file_lines(content: pa.Array, files: pa.Array, with_files: pa.Array) -> pa.Array:
    """``ChatMessage.to_openai`` content: the text, a blank line, one line per attached file."""
    names = pc.binary_join_element_wise("[attached file: ", pc.list_flatten(files), "]", "")
    lengths = pc.fill_null(pc.list_value_length(files), 0).to_numpy()
    lists = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)), names)
    lines = pc.binary_join(lists, "\n")
    joined = pc.if_else(pc.equal(content, ""), lines, pc.binary_join_element_wise(content, lines, "\n\n"))
    return pc.if_else(with_files, joined, content)


def dedup_replies(statuses: list[pa.Table], candidates: list[pa.Table]) -> tuple[pa.Table, pa.Table, int, int]:
    """Keep the first copy of each reply (by key) across shards.

    Returns:
        ``(statuses, candidates, duplicates, deleted)``: one status row per distinct reply (and one
        per incomplete turn), the distinct candidate replies in shard order, and the numbers of
        duplicate turn records dropped and of turn records of deleted conversations (see
        :func:`dedup_statuses`).
    """
    status, duplicates, deleted = dedup_statuses(statuses)
    table = pa.concat_tables(candidates)
    if duplicates:  # (a deleted conversation's turns are never candidates)
        table = table.filter(pa.array(first_copies(table["key"])))
    return status, table, duplicates, deleted


def dedup_statuses(statuses: list[pa.Table]) -> tuple[pa.Table, int, int]:
    """The status rows of distinct replies (first copy of each), the number of copies dropped (but
    those of deleted conversations) and the number of turn records of deleted conversations (copies too)."""
    status = pa.concat_tables(statuses)
    first = first_copies(status["key"])
    deleted = status["status"].to_numpy() == STATUS["deleted"]
    return status.filter(pa.array(first)), int((~first & ~deleted).sum()), int(deleted.sum())
