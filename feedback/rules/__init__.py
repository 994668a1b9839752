"""What counts: the rules every reader of the records applies (exports, the review queue, stats).

* **Reply key.** A reply is named by ``conversation_id`` + ``message_id`` (joined by ``\\x1f``):
  a rating, flag or review counts for a turn only when both ids match. One that names a
  message of another conversation names an unknown reply, and counts for none.
* **A turn** is the first record of its reply key, in file order (a copy of it is a duplicate).
* **Latest rating wins**, by timestamp; equal timestamps: the later in file order.
  ``rating: null`` is an undo: a reply whose latest rating record is an undo is unrated.
* **Identical records count once** (the same shard synced twice, two copies of a file): a rating
  or review equal to the one before it (same reply, same time, same values), a flag equal to any
  earlier one (same reply, time, reasons and comment).
* **Flagged**: any flag record names the reply. A reason named twice in one flag counts once.
* **The latest review decides** (by timestamp, then file order), for a flagged reply:
  ``dismissed``: the flag no longer keeps the reply out of training sets (the review queue still
  lists it); ``confirmed``: the reply is never a positive example: out of SFT and of KTO-true even
  when liked or kept with ``keep_flagged``, never a DPO ``chosen``; ``needs-fix``: the flag stands.
  A ``corrected_reply`` (of the latest review, whatever its decision: a reviewer who writes one means
  it as the better reply) becomes a DPO ``chosen`` against the flagged reply, and an SFT row: the
  flagged reply's prompt, the correction as the completion.
* **A flag about quality does not hide a negative.** A *disliked* reply whose flags name only
  reasons of :data:`QUALITY_REASONS` (``Inaccurate``, ``Off-topic``; the exports' option
  ``keep_flagged_reasons``) stays in the preference formats as a negative (DPO ``rejected``, KTO
  false): the user said twice that it is a bad answer. Any other reason (``Harmful``, ``Other``, a
  custom one) keeps it out until a reviewer dismisses the flag: its text may be unsafe to train on,
  even as a negative. A standing flag always keeps a *liked* reply out (the two signals disagree).
  The decision values are ``schemas.records.Decision``, the rating values ``RatingValue``.

Where:

* ``feedback.rules.tables``: the rules vectorized over Arrow tables: :func:`judge` gives :class:`Verdicts`;
  ``Verdicts.replies(turns)`` the verdict on each turn as numpy arrays (:class:`ReplyVerdicts`).
* ``feedback.rules.sql``: the same rules as DuckDB SQL (what runs on millions of records: the exports,
  ``feedback.export.engine``, and the review index's queue and stats), tested to agree with the tables.
* ``feedback.rules.records``: the same engine for ``schemas.records`` objects (the review queue
  and the stats): :func:`judge_records` puts the records into those tables and maps the verdicts
  back to records (:class:`Reply`).

**Deletions.** A conversation named by a deletion record (``schemas.records.Deletion``, kind
``deletions``) is deleted from the moment that record exists: every record of it is ignored by every
reader, those written before the deletion record and those written after it (a replica that had not
heard of it yet) alike; a deletion record counts whatever its time, and is never undone. This lives
here and nowhere else: :func:`judge` takes the deletion records as a fourth table and drops every
rating, flag and review of a deleted conversation before any rule runs (``Verdicts.deleted`` keeps
the deleted conversation ids, ``Verdicts.counts[kind]["deleted"]`` how many records were dropped);
``Verdicts.replies(turns)`` gives a ``deleted`` mask, which ``judge_records`` uses to skip those turns.
The SQL form (``feedback.rules.sql``: the ``deleted`` view, every rule view reading the records of the
other conversations only) does the same for the exports (which make ``deleted`` the first reason a reply
is left out: ``stats.json``'s ``left_out.deleted``), the review index, its queue and stats, and the
``flagged`` view of a repo built from that queue. No reader filters deleted records on its own
(but the dataset card's ready-to-run SQL, ``feedback.hub.card``, which runs outside this code).
"""

from feedback.rules.records import JudgedRecords, Reply, judge_records
from feedback.rules.tables import (
    DELETION_COLUMNS,
    DISLIKE,
    FLAG_COLUMNS,
    LIKE,
    QUALITY_REASONS,
    RATING_COLUMNS,
    REVIEW_COLUMNS,
    UNRATED,
    LatestReview,
    ReplyVerdicts,
    Verdicts,
    deleted_conversations,
    first_copies,
    judge,
    reply_keys,
)

__all__ = [
    "DELETION_COLUMNS",
    "DISLIKE",
    "FLAG_COLUMNS",
    "LIKE",
    "QUALITY_REASONS",
    "RATING_COLUMNS",
    "REVIEW_COLUMNS",
    "UNRATED",
    "JudgedRecords",
    "LatestReview",
    "Reply",
    "ReplyVerdicts",
    "Verdicts",
    "deleted_conversations",
    "first_copies",
    "judge",
    "judge_records",
    "reply_keys",
]
