"""One set of rules for what counts: exports, the review queue and the stats read the same records alike.

The same records (an undo, a rating changed twice, equal timestamps, identical copies, a rating
and a flag naming a reply of another conversation, dismissed, confirmed and needs-fix reviews) go
through the exports (``feedback.export``), the review queue and the stats (``feedback.review``),
which must agree with each other and with the rules as written in ``feedback.rules``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.rules import (
    FLAGS,
    LATEST,
    MIDS,
    OWNER,
    RATINGS,
    RECORDS,
    REVIEWS,
    TURNS,
    deletions_strategy,
    flags_strategy,
    interleaved,
    ratings_strategy,
    reviews_strategy,
    turn,
)

from feedback.export import export_records, flag_rows, kto_rows, sft_rows
from feedback.review import build_queue, compute_stats
from feedback.rules import judge_records
from schemas.records import DECISIONS, Rating

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
        assert (
            queue
            == rows
            == {
                mid: LATEST[mid]
                for mid in ("copied-reply", "dismissed-reply", "confirmed-reply", "fixme-reply", "tied-reply")
            }
        )
        labels = {
            row["message_id"]: "like" if row["label"] else "dislike"
            for row in exported("kto", keep_flagged=True, include_ids=True)
        }
        assert labels == {mid: value for mid, value in LATEST.items() if value and mid != "confirmed-reply"}

    def test_flags_count_once_and_only_on_their_own_conversations_reply(self):
        queue = {item.message_id: (len(item.flags), dict(item.reason_counts)) for item in build_queue(RECORDS)}
        rows = {
            row["message_id"]: (row["flag_count"], {r["reason"]: r["count"] for r in row["reasons"]})
            for row in exported("flags")
        }
        assert queue == rows
        assert queue["copied-reply"] == (1, {"Harmful": 1, "Inaccurate": 1})
        assert queue["tied-reply"] == (1, {"Other": 1})
        assert "owned-reply" not in queue
        (copied,) = [item for item in build_queue(RECORDS) if item.message_id == "copied-reply"]
        assert len(copied.ratings) == 1
        assert copied.comments() == ["flag (Harmful, Inaccurate): twice", "rating (dislike): no"]

    def test_decisions_mean_the_same_in_the_queue_and_the_exports(self):
        status = {item.message_id: item.status for item in build_queue(RECORDS)}
        assert status == {
            "copied-reply": "open",
            "tied-reply": "open",
            "dismissed-reply": "dismissed",
            "confirmed-reply": "confirmed",
            "fixme-reply": "needs-fix",
        }
        export = export_records("dpo", TURNS, RATINGS, FLAGS, reviews=REVIEWS)
        assert export.stats["reviews"] == {**Counter(s for s in status.values() if s != "open"), "correction_pairs": 1}
        sft = {row["message_id"] or f"corrects {row['corrected_id']}" for row in exported("sft", include_ids=True)}
        assert sft == {"changed-reply", "dismissed-reply", "corrects fixme-reply"}  # tied-reply: its flag stands
        for keep_flagged in (False, True):
            liked = {
                row["message_id"]
                for row in exported("kto", include_ids=True, keep_flagged=keep_flagged)
                if row["label"]
            }
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
        reasons = sum(
            (Counter({r["reason"]: r["count"] for r in row["reasons"]}) for row in exported("flags")), Counter()
        )
        assert dict(zip(stats.flags_per_reason.reason, stats.flags_per_reason["count"], strict=True)) == reasons
        assert stats.open_queue == 2

    def test_the_exports_count_copies_undos_and_unknown_replies(self):
        records = export_records("sft", TURNS, RATINGS, FLAGS, reviews=REVIEWS).stats["records"]
        assert records["ratings"]["duplicates"] == 1 and records["flags"]["duplicates"] == 1
        assert records["ratings"]["undone"] == 1
        assert records["ratings"]["unknown_reply"] == 1 and records["flags"]["unknown_reply"] == 1


# -- any records: the readers agree ----------------------------------------------------------


def _reference_ratings(ratings: list[Rating], deleted: set[str] = frozenset()) -> dict[str, str]:
    """The rules in plain Python: per (conversation, message), the latest by time then file order; undo removes;
    a reply of a ``deleted`` conversation has none."""
    latest: dict[tuple[str, str], tuple[datetime, str | None]] = {}
    for record in ratings:
        key = (record.conversation_id, record.message_id)
        if key not in latest or record.timestamp >= latest[key][0]:
            latest[key] = (record.timestamp, record.rating)
    return {
        mid: value
        for (cid, mid), (_, value) in latest.items()
        if value and OWNER.get(mid) == cid and cid not in deleted
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ratings_strategy,
    flags_strategy,
    reviews_strategy,
    st.integers(0, len(MIDS)),
    deletions_strategy,
    st.integers(0, 60),
)
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
    assert [
        (i.message_id, i.rating, len(i.flags), dict(i.reason_counts)) for i in sorted(queue, key=lambda i: i.message_id)
    ] == [
        (r["message_id"], r["rating"], r["flag_count"], {x["reason"]: x["count"] for x in r["reasons"]})
        for r in sorted(rows, key=lambda r: r["message_id"])
    ]

    export = export_records("kto", turns, ratings, flags, reviews=reviews, deletions=deletions)
    stats = compute_stats(records)
    replies = export.stats["replies"]
    assert (
        int(stats.per_model.replies.sum()),
        int(stats.per_model.likes.sum()),
        int(stats.per_model.dislikes.sum()),
    ) == (replies["total"], replies["liked"], replies["disliked"])
    assert int(stats.ratings_per_day["count"].sum()) == replies["liked"] + replies["disliked"]
    assert export.stats["left_out"].get("deleted", 0) == sum(OWNER[mid] in deleted for mid in MIDS)
    decided = Counter(item.status for item in queue)
    assert {d: decided[d] for d in DECISIONS} == {d: export.stats["reviews"][d] for d in DECISIONS}
    assert stats.open_queue == decided["open"]

    labels = {
        (row["message_id"], row["label"])
        for row in kto_rows(
            turns,
            ratings,
            flags,
            reviews=reviews,
            deletions=deletions,
            keep_flagged=True,
            include_ids=True,
            test_size=0,
        )
    }
    confirmed = {i.message_id for i in queue if i.status == "confirmed"}
    assert labels == {
        (mid, value == "like") for mid, value in judged.items() if value and not (mid in confirmed and value == "like")
    }


@pytest.mark.parametrize("kind", ["ratings", "flags", "reviews"])
def test_an_empty_kind_is_judged(kind):
    records = [record for record in RECORDS if record.kind != kind]
    assert len(judge_records(records).replies) == len(TURNS)
