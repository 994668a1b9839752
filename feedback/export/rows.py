"""What an export's rows are: their order, their split, identical rows, corrections and preference pairs.

* Order: log order (shards by name, lines in order); a DPO pair comes where its later reply is.
  Shard names start with their UTC start time, so this is roughly time order, and it does not
  depend on where the log was read from.
* Split: a conversation is in ``test`` when a keyed hash of its id (key: the seed) falls below
  ``test_size``. So no conversation is in both splits, the split is the same for every format
  (SFT, DPO and KTO rows of a conversation land together) and a conversation keeps its split as
  the log grows. The test share is ``test_size`` on average, not exactly. A cross-conversation
  pair whose two conversations fall in different splits is left out.
* Identical rows (same TRL columns, ids aside) are kept once, the first in order; they are
  compared by the 128-bit MD5 of their JSON. The kept row's ``count`` (``include_ids``) is the number of
  distinct conversations that gave it (a pair's conversation is its chosen reply's): two users who
  liked the same reply to the same prompt make one row of count 2.
* A reviewer's corrected reply (formats that take corrections) is a reply of its own: the
  correction as ``response``, ``message_id`` null, ``corrected_id`` the flagged reply; in a
  one-row-per-reply format it comes right after the flagged reply, in a paired one it is
  ``chosen`` against the flagged reply, after the rating pairs.
* Preference pairs: two replies are to the same prompt when their TRL prompt messages (role and content,
  files rendered as text) are equal: a reply and its regeneration, never a reply and the reply to an
  edited message. By default both replies must be in the same conversation; with ``cross_conversation``
  identical prompts of different conversations pair too. Every liked reply pairs with every disliked
  reply to its prompt (one pair in the usual regenerate-once case; a reply and three regenerations rated
  dislike, like, dislike, like give four pairs); with ``latest``, a prompt gives one pair, its latest
  liked reply against its latest disliked one (by the time of the replies, then log order). Two replies
  with the same text never pair. Prompts are compared by the MD5 of their JSON.

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
