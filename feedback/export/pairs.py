"""Preference pairs: a liked and a disliked reply to the same prompt.

Two replies are to the same prompt when their TRL prompt messages (role and content, files
rendered as text) are equal: a reply and its regeneration, never a reply and the reply to an
edited message. By default both replies must be in the same conversation; with
``cross_conversation`` identical prompts of different conversations pair too. Every liked reply
pairs with every disliked reply to its prompt (one pair in the usual regenerate-once case; a reply
and three regenerations rated dislike, like, dislike, like give four pairs); with ``latest``, a
prompt gives one pair, its latest liked reply against its latest disliked one. Two replies with the
same text never pair.

Prompts are first grouped by a cheap key (conversation, number of messages, last message) in
Arrow, and only groups that hold both a like and a dislike are compared exactly in Python (by a
128-bit BLAKE2b digest of the prompt's JSON).
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from feedback.arrow import RowTaker
from feedback.rules import LIKE

BATCH = 4096
"""Replies whose prompts are compared at a time."""


def preference_pairs(
    replies: pa.Table,
    taker: RowTaker,
    *,
    cross_conversation: bool,
    latest: bool = False,
    progress: bool = False,
    rows: np.ndarray | None = None,
    total: int | None = None,
) -> tuple[np.ndarray, np.ndarray, Counter]:
    """The (chosen, rejected) row positions in ``replies`` of every pair.

    Args:
        replies: rated candidate replies with ``conversation_id``, ``prompt``, ``response``,
            ``rating`` (LIKE or DISLIKE) and ``timestamp``.
        taker: takes rows of ``replies``.
        cross_conversation: also pair replies of different conversations.
        latest: one pair per prompt: its latest liked reply against its latest disliked one (by
            ``timestamp``, then position); none when the two have the same text.
        progress: show a progress bar over the prompts compared.
        rows: the positions (ascending) of the replies whose prompts may have both ratings, when the
            caller found them (:func:`mixed_prompt_rows`); default: found here from ``prompt``.
        total: the number of candidate replies, when ``replies`` holds only some of them (those
            ``rows`` name); default ``replies.num_rows``. ``no_opposite_rating`` counts from it.

    Returns:
        ``(chosen, rejected, counts)``, positions as int64 arrays; counts has
        ``identical_chosen_rejected`` (pairs dropped because both replies are the same text),
        ``no_opposite_rating`` (replies in no pair, counting every pair even with ``latest``) and,
        with ``latest``, ``not_latest_pair`` (the other pairs of a prompt, left out).
    """
    if rows is None:
        rows = _mixed_prompt_rows(replies, cross_conversation)
    groups: dict[bytes, tuple[list[int], list[int]]] = {}
    responses: dict[int, str] = {}
    times: dict[int, object] = {}
    names = ("conversation_id", "prompt", "rating", "response", "timestamp")
    for start in tqdm(range(0, len(rows), BATCH), unit="batch", desc="pairing replies", disable=not progress):
        batch = rows[start : start + BATCH]
        part = taker.take(batch)
        columns = [part[name].to_pylist() for name in names]
        for row, conversation, prompt, rating, response, time in zip(batch.tolist(), *columns, strict=True):
            key = hashlib.blake2b(
                orjson.dumps(prompt if cross_conversation else [conversation, prompt]), digest_size=16
            ).digest()
            groups.setdefault(key, ([], []))[0 if rating == LIKE else 1].append(row)
            responses[row], times[row] = response, time
    chosen, rejected, counts = [], [], Counter()
    in_pairs: set[int] = set()
    for likes, dislikes in groups.values():
        pairs = [(good, bad) for good in likes for bad in dislikes if responses[good] != responses[bad]]
        in_pairs.update(row for pair in pairs for row in pair)
        if latest and likes and dislikes:
            good, bad = (max(group, key=lambda row: (times[row], row)) for group in (likes, dislikes))
            made = [(good, bad)] if responses[good] != responses[bad] else []
            counts.update(
                +Counter({"identical_chosen_rejected": 1 - len(made), "not_latest_pair": len(pairs) - len(made)})
            )
            pairs = made
        else:
            counts.update(+Counter({"identical_chosen_rejected": len(likes) * len(dislikes) - len(pairs)}))
        chosen.extend(good for good, _ in pairs)
        rejected.extend(bad for _, bad in pairs)
    counts["no_opposite_rating"] = (replies.num_rows if total is None else total) - len(in_pairs)
    if latest:
        counts.setdefault("not_latest_pair", 0)
    return np.asarray(chosen, dtype=np.int64), np.asarray(rejected, dtype=np.int64), counts


def _mixed_prompt_rows(replies: pa.Table, cross_conversation: bool) -> np.ndarray:
    """Positions of replies whose cheap prompt key has both a liked and a disliked reply, in order."""
    keys = ["length", "last"] if cross_conversation else ["conversation_id", "length", "last"]
    light = pa.table(
        {
            "conversation_id": replies["conversation_id"],
            "length": pc.list_value_length(replies["prompt"]),
            "last": _last_contents(replies["prompt"]),
            "liked": pc.equal(replies["rating"], LIKE),
            "row": pa.array(np.arange(replies.num_rows)),
        }
    )
    groups = light.group_by(keys).aggregate([("liked", "any"), ("liked", "all")])
    mixed = groups.filter(pc.and_(groups["liked_any"], pc.invert(groups["liked_all"]))).select(keys)
    if mixed.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(light.join(mixed, keys=keys, join_type="inner")["row"].to_numpy())


def mixed_prompt_rows(light: pa.Table, cross_conversation: bool) -> np.ndarray:
    """Positions of replies whose coarse prompt key has both a liked and a disliked reply, in order.

    ``light`` holds no text: ``conversation_id``, ``length`` (messages in the prompt), ``rating`` and,
    for ``cross_conversation``, ``last`` (a 64-bit hash of the prompt's last message). The key is
    ``(conversation_id, length)``, or ``(length, last)`` across conversations: every two replies to
    one prompt share it (a reply's regenerations have its prompt), so the positions hold every reply
    of a pair; the few others (an edited message's replies, a hash collision) pair with nothing in
    :func:`preference_pairs`, which compares prompts exactly.
    """
    keys = ["length", "last"] if cross_conversation else ["conversation_id", "length"]
    table = light.select(keys).append_column("liked", pc.equal(light["rating"], LIKE))
    table = table.append_column("row", pa.array(np.arange(light.num_rows)))
    groups = table.group_by(keys).aggregate([("liked", "any"), ("liked", "all")])
    mixed = groups.filter(pc.and_(groups["liked_any"], pc.invert(groups["liked_all"]))).select(keys)
    if mixed.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(table.join(mixed, keys=keys, join_type="inner")["row"].to_numpy())


def last_content_hashes(prompts: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A 64-bit hash (Python's ``hash``, fixed for the process) of each prompt's last message content."""
    prompts = prompts if isinstance(prompts, pa.ChunkedArray) else pa.chunked_array([prompts])
    return pa.array([hash(text) for text in _last_contents(prompts).to_pylist()], pa.int64())


def _last_contents(prompts: pa.ChunkedArray) -> pa.ChunkedArray:
    """The content of the last message of each prompt."""
    chunks = []
    for chunk in prompts.chunks:
        ends = np.cumsum(pc.list_value_length(chunk).to_numpy(zero_copy_only=False)) - 1
        chunks.append(pc.struct_field(chunk.flatten(), "content").take(pa.array(ends)))
    return pa.chunked_array(chunks, pa.string())
