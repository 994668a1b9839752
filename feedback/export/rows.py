"""Rows from candidate replies: built and serialized per shard, then deduplicated, split and written.

* Order: log order (shards by name, lines in order); a DPO pair comes where its later reply is.
  Shard names start with their UTC start time, so this is roughly time order, and it does not
  depend on where the log was read from.
* Split: a conversation is in ``test`` when a keyed hash of its id (key: the seed) falls below
  ``test_size``. So no conversation is in both splits, the split is the same for every format
  (SFT, DPO and KTO rows of a conversation land together) and a conversation keeps its split as
  the log grows. The test share is ``test_size`` on average, not exactly. A cross-conversation
  pair whose two conversations fall in different splits is left out.
* Identical rows (same TRL columns, ids aside) are kept once, the first in order; they are
  compared by a 128-bit BLAKE2b digest of their JSON. The kept row's ``count`` is the number of
  distinct conversations that gave it (a pair's conversation is its chosen reply's): two users who
  liked the same reply to the same prompt make one row of count 2. It is known once every row is
  seen, so it is added to the rows (``include_ids``) at the end: :func:`with_count`.
* A reviewer's corrected reply (formats that take corrections) is a reply of its own: the
  correction as ``response``, ``message_id`` null, ``corrected_id`` the flagged reply; in a
  one-row-per-reply format it comes right after the flagged reply, in a paired one it is
  ``chosen`` against the flagged reply, after the rating pairs.

Rows are built, serialized, deduplicated and split by DuckDB (``feedback.export.engine``); the split's
hash is computed here, in Python, once per conversation.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "test")


def in_test_split(conversation_id: str, *, test_size: float, seed: int) -> bool:
    """True when the conversation belongs to the test split (a keyed BLAKE2b hash below ``test_size``)."""
    digest = hashlib.blake2b(conversation_id.encode(), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "big") < test_size * 2**64
