"""One set of rules for what counts: exports, the review queue and the stats read the same records alike.

The same records (an undo, a rating changed twice, equal timestamps, identical copies, a rating
and a flag naming a reply of another conversation, dismissed, confirmed and needs-fix reviews) go
through the exports (``feedback.export``), the review queue and the stats (``feedback.review``),
which must agree with each other and with the rules as written in ``feedback.rules``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback.export import export_records, flag_rows, kto_rows, sft_rows
from feedback.review import build_queue, compute_stats
from feedback.rules import judge_records
from schemas.records import DECISIONS, ChatMessage, Deletion, Flag, Rating, Record, Review, Turn

T0 = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
A, B = "conv-aaaaaaaa", "conv-bbbbbbbb"


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def turn(cid: str, mid: str, minute: int = 0) -> Turn:
    return Turn(conversation_id=cid, message_id=mid, turn_index=0, messages=[ChatMessage(role="user", content=mid)],
                response=f"reply {mid}", model="m1", latency_ms=1.0, timestamp=at(minute))


def rating(cid: str, mid: str, value: str | None, minute: int, **extra: str) -> Rating:
    return Rating(conversation_id=cid, message_id=mid, rating=value, timestamp=at(minute), **extra)


def flag(cid: str, mid: str, minute: int, *reasons: str, comment: str | None = None) -> Flag:
    return Flag(conversation_id=cid, message_id=mid, reasons=reasons or ("Harmful",), comment=comment,
                timestamp=at(minute))


def review(cid: str, mid: str, decision: str, minute: int, fixed: str | None = None) -> Review:
    return Review(conversation_id=cid, message_id=mid, decision=decision, corrected_reply=fixed, reviewer="ann",
                  timestamp=at(minute))


TURNS = [turn(A, mid) for mid in ("undone-reply", "changed-reply", "tied-reply", "copied-reply", "dismissed-reply",
                                  "confirmed-reply", "fixme-reply")] + [turn(B, "owned-reply")]
RATINGS = [
    rating(A, "undone-reply", "like", 1), rating(A, "undone-reply", None, 2),  # an undo
    rating(A, "changed-reply", "like", 1), rating(A, "changed-reply", "dislike", 2),
    rating(A, "changed-reply", "like", 24 * 60),  # changed twice, the last a day later
    rating(A, "tied-reply", "dislike", 3), rating(A, "tied-reply", "like", 3),  # equal times: file order
    rating(A, "copied-reply", "dislike", 4, comment="no"), rating(A, "copied-reply", "dislike", 4, comment="no"),
    rating(A, "owned-reply", "like", 5),  # names conversation B's reply with conversation A's id
    rating(A, "dismissed-reply", "like", 6), rating(A, "confirmed-reply", "like", 7),
    rating(A, "fixme-reply", "dislike", 8),
]
FLAGS = [
    flag(A, "copied-reply", 10, "Harmful", "Inaccurate", comment="twice"),
    flag(A, "copied-reply", 10, "Harmful", "Inaccurate", comment="twice"),  # the same shard synced twice
    flag(A, "owned-reply", 11, "Off-topic"),  # another conversation's reply
    flag(A, "dismissed-reply", 12), flag(A, "confirmed-reply", 13), flag(A, "fixme-reply", 14, "Inaccurate"),
    flag(A, "tied-reply", 15, "Other", "Other"),  # a reason named twice counts once
]
REVIEWS = [
    review(A, "dismissed-reply", "dismissed", 20),
    review(A, "confirmed-reply", "dismissed", 21), review(A, "confirmed-reply", "confirmed", 22),  # latest wins
    review(A, "fixme-reply", "needs-fix", 23, fixed="a better reply"),
]
RECORDS: list[Record] = [*TURNS, *RATINGS, *FLAGS, *REVIEWS]

LATEST = {"undone-reply": None, "changed-reply": "like", "tied-reply": "like", "copied-reply": "dislike",
          "owned-reply": None, "dismissed-reply": "like", "confirmed-reply": "like", "fixme-reply": "dislike"}
"""The rating that counts for each reply, by the rules."""


ROWS = {"sft": sft_rows, "kto": kto_rows, "flags": flag_rows}


def exported(fmt: str, **options: object) -> list[dict]:
    """Every row of an export of the records above, in one split."""
    return ROWS[fmt](TURNS, RATINGS, FLAGS, reviews=REVIEWS, test_size=0, **options)


class TestOneSetOfRecords:
    def test_the_latest_rating_is_the_same_for_every_reader(self):
        judged = {reply.turn.message_id: reply.rating for reply in judge_records(RECORDS).replies.values()}
        assert judged == LATEST
        queue = {item.message_id: item.rating for item in build_queue(RECORDS)}
        rows = {row["message_id"]: row["rating"] for row in exported("flags")}
        assert queue == rows == {mid: LATEST[mid] for mid in ("copied-reply", "dismissed-reply", "confirmed-reply",
                                                             "fixme-reply", "tied-reply")}
        labels = {row["message_id"]: "like" if row["label"] else "dislike"
                  for row in exported("kto", keep_flagged=True, include_ids=True)}
        assert labels == {mid: value for mid, value in LATEST.items() if value and mid != "confirmed-reply"}

    def test_flags_count_once_and_only_on_their_own_conversations_reply(self):
        queue = {item.message_id: (len(item.flags), dict(item.reason_counts)) for item in build_queue(RECORDS)}
        rows = {row["message_id"]: (row["flag_count"], {r["reason"]: r["count"] for r in row["reasons"]})
                for row in exported("flags")}
        assert queue == rows
        assert queue["copied-reply"] == (1, {"Harmful": 1, "Inaccurate": 1})
        assert queue["tied-reply"] == (1, {"Other": 1})
        assert "owned-reply" not in queue
        (copied,) = [item for item in build_queue(RECORDS) if item.message_id == "copied-reply"]
        assert len(copied.ratings) == 1
        assert copied.comments() == ["flag (Harmful, Inaccurate): twice", "rating (dislike): no"]

    def test_decisions_mean_the_same_in_the_queue_and_the_exports(self):
        status = {item.message_id: item.status for item in build_queue(RECORDS)}
        assert status == {"copied-reply": "open", "tied-reply": "open", "dismissed-reply": "dismissed",
                          "confirmed-reply": "confirmed", "fixme-reply": "needs-fix"}
        export = export_records("dpo", TURNS, RATINGS, FLAGS, reviews=REVIEWS)
        assert export.stats["reviews"] == {**Counter(s for s in status.values() if s != "open"), "correction_pairs": 1}
        sft = {row["message_id"] or f"corrects {row['corrected_id']}" for row in exported("sft", include_ids=True)}
        assert sft == {"changed-reply", "dismissed-reply", "corrects fixme-reply"}  # tied-reply: its flag stands
        for keep_flagged in (False, True):
            liked = {row["message_id"] for row in exported("kto", include_ids=True, keep_flagged=keep_flagged)
                     if row["label"]}
            assert "confirmed-reply" not in liked and "dismissed-reply" in liked
        (pair,) = export.rows()
        assert pair["chosen"][0]["content"] == "a better reply"
        assert pair["rejected"][0]["content"] == "reply fixme-reply"

    def test_stats_count_what_the_exports_count(self):
        stats = compute_stats(RECORDS)
        replies = export_records("kto", TURNS, RATINGS, FLAGS, reviews=REVIEWS).stats["replies"]
        (model,) = stats.per_model.itertuples()
        assert (model.replies, model.likes, model.dislikes) == (replies["total"], replies["liked"], replies["disliked"])
        per_day = {(row.day, row.rating): row.count for row in stats.ratings_per_day.itertuples()}
        assert per_day == {("2026-04-01", "like"): 3, ("2026-04-02", "like"): 1, ("2026-04-01", "dislike"): 2}
        reasons = sum((Counter({r["reason"]: r["count"] for r in row["reasons"]}) for row in exported("flags")),
                      Counter())
        assert dict(zip(stats.flags_per_reason.reason, stats.flags_per_reason["count"], strict=True)) == reasons
        assert stats.open_queue == 2

    def test_the_exports_count_copies_undos_and_unknown_replies(self):
        records = export_records("sft", TURNS, RATINGS, FLAGS, reviews=REVIEWS).stats["records"]
        assert records["ratings"]["duplicates"] == 1 and records["flags"]["duplicates"] == 1
        assert records["ratings"]["undone"] == 1
        assert records["ratings"]["unknown_reply"] == 1 and records["flags"]["unknown_reply"] == 1


# -- any records: the readers agree ----------------------------------------------------------

MIDS = [f"reply-{n:04d}" for n in range(5)]
OWNER = {mid: (A if n % 2 else B) for n, mid in enumerate(MIDS)}


def _conversation(owned: bool, mid: str) -> str:
    return OWNER[mid] if owned else ({A, B} - {OWNER[mid]}).pop()


OWNED = st.sampled_from([True, True, True, False])
"""Mostly a record naming the reply with its own conversation, sometimes with the other one."""
ratings_strategy = st.lists(st.builds(
    lambda mid, owned, value, minute, copies: [rating(_conversation(owned, mid), mid, value, minute)] * copies,
    st.sampled_from(MIDS), OWNED, st.sampled_from(["like", "dislike", None]),
    st.integers(0, 3), st.integers(1, 2)), max_size=14)
flags_strategy = st.lists(st.builds(
    lambda mid, owned, reasons, minute, copies: [flag(_conversation(owned, mid), mid, minute, *reasons)] * copies,
    st.sampled_from(MIDS), OWNED,
    st.lists(st.sampled_from(["Harmful", "Inaccurate", "Other"]), min_size=1, max_size=3), st.integers(0, 3),
    st.integers(1, 2)), max_size=8)
reviews_strategy = st.lists(st.builds(
    lambda mid, decision, minute, fixed: [review(OWNER[mid], mid, decision, minute, fixed)],
    st.sampled_from(MIDS), st.sampled_from(DECISIONS), st.integers(0, 3), st.sampled_from([None, "fixed"])),
    max_size=6)
deletions_strategy = st.lists(st.builds(
    lambda cid, minute: Deletion(conversation_id=cid, requested_by="user", timestamp=at(minute)),
    st.sampled_from([A, B, "conv-nobody00"]), st.integers(0, 3)), max_size=2).filter(
    lambda deletions: {d.conversation_id for d in deletions} != {A, B})
"""No deletion (most often), one or two of conversation A, B or of one with no record; never both A and B
(nothing would be left to compare)."""


def interleaved(records: list[Record], deletions: list[Deletion], place: int) -> list[Record]:
    """``records`` with ``deletions`` inserted at ``place`` (modulo their number): a deletion record
    comes before some records of its conversation and after others."""
    place %= len(records) + 1
    return [*records[:place], *deletions, *records[place:]]


def _reference_ratings(ratings: list[Rating], deleted: set[str] = frozenset()) -> dict[str, str]:
    """The rules in plain Python: per (conversation, message), the latest by time then file order; undo removes;
    a reply of a ``deleted`` conversation has none."""
    latest: dict[tuple[str, str], tuple[datetime, str | None]] = {}
    for record in ratings:
        key = (record.conversation_id, record.message_id)
        if key not in latest or record.timestamp >= latest[key][0]:
            latest[key] = (record.timestamp, record.rating)
    return {mid: value for (cid, mid), (_, value) in latest.items()
            if value and OWNER.get(mid) == cid and cid not in deleted}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ratings_strategy, flags_strategy, reviews_strategy, st.integers(0, len(MIDS)), deletions_strategy,
       st.integers(0, 60))
def test_export_queue_and_stats_agree_on_any_records(ratings, flags, reviews, copied_turn, deletions, place):
    turns = [turn(OWNER[mid], mid) for mid in MIDS] + [turn(OWNER[mid], mid) for mid in MIDS[:copied_turn]]
    ratings, flags, reviews = (sum(groups, []) for groups in (ratings, flags, reviews))
    records = interleaved([*turns, *ratings, *flags, *reviews], deletions, place)
    deleted = {d.conversation_id for d in deletions}
    kept = [record for record in records if record.kind != "deletions" and record.conversation_id not in deleted]
    assert judge_records(records).replies == judge_records(kept).replies  # deleted: as if never written

    judged = {reply.turn.message_id: reply.rating for reply in judge_records(records).replies.values()}
    assert {mid: value for mid, value in judged.items() if value} == _reference_ratings(ratings, deleted)

    rows = flag_rows(turns, ratings, flags, reviews=reviews, deletions=deletions, test_size=0)
    queue = build_queue(records)
    assert [(i.message_id, i.rating, len(i.flags), dict(i.reason_counts))
            for i in sorted(queue, key=lambda i: i.message_id)] \
        == [(r["message_id"], r["rating"], r["flag_count"], {x["reason"]: x["count"] for x in r["reasons"]})
            for r in sorted(rows, key=lambda r: r["message_id"])]

    export = export_records("kto", turns, ratings, flags, reviews=reviews, deletions=deletions)
    stats = compute_stats(records)
    replies = export.stats["replies"]
    assert (int(stats.per_model.replies.sum()), int(stats.per_model.likes.sum()), int(stats.per_model.dislikes.sum())) \
        == (replies["total"], replies["liked"], replies["disliked"])
    assert int(stats.ratings_per_day["count"].sum()) == replies["liked"] + replies["disliked"]
    assert export.stats["left_out"].get("deleted", 0) == sum(OWNER[mid] in deleted for mid in MIDS)
    decided = Counter(item.status for item in queue)
    assert {d: decided[d] for d in DECISIONS} == {d: export.stats["reviews"][d] for d in DECISIONS}
    assert stats.open_queue == decided["open"]

    labels = {(row["message_id"], row["label"])
              for row in kto_rows(turns, ratings, flags, reviews=reviews, deletions=deletions, keep_flagged=True,
                                  include_ids=True, test_size=0)}
    confirmed = {i.message_id for i in queue if i.status == "confirmed"}
    assert labels == {(mid, value == "like") for mid, value in judged.items()
                      if value and not (mid in confirmed and value == "like")}


@pytest.mark.parametrize("kind", ["ratings", "flags", "reviews"])
def test_an_empty_kind_is_judged(kind):
    records = [record for record in RECORDS if record.kind != kind]
    assert len(judge_records(records).replies) == len(TURNS)
