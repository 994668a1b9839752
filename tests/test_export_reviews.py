"""Exports honour reviewers' decisions: confirmed, dismissed, needs-fix with a corrected reply."""

from __future__ import annotations

import pytest
from support.records import make_turn

from feedback.export import dpo_rows, kto_rows, rows_from_data_dir, sft_rows
from feedback.store import FeedbackStore
from schemas.records import Flag, Rating, Review, Turn

CID = "conversation-1"


def turn(mid: str, index: int, text: str, response: str, minute: int) -> Turn:
    return make_turn(CID, mid, index=index, text=text, response=response, timestamp=f"2026-05-01T10:{minute:02d}:00Z")


def rating(mid: str, value: str, minute: int) -> Rating:
    return Rating(conversation_id=CID, message_id=mid, rating=value, timestamp=f"2026-05-01T11:{minute:02d}:00Z")


def flag(mid: str, minute: int) -> Flag:
    return Flag(conversation_id=CID, message_id=mid, reasons=["Harmful"], timestamp=f"2026-05-01T12:{minute:02d}:00Z")


def review(mid: str, decision: str, minute: int, fixed: str | None = None) -> Review:
    return Review(
        conversation_id=CID,
        message_id=mid,
        decision=decision,
        corrected_reply=fixed,
        reviewer="ann",
        timestamp=f"2026-05-01T13:{minute:02d}:00Z",
    )


TURNS = [
    turn("reply-confirmed", 0, "q1", "liked but harmful", 0),
    turn("reply-fixme", 1, "q2", "wrong answer", 1),
    turn("reply-dismissed", 2, "q3", "fine answer", 2),
]
RATINGS = [
    rating("reply-confirmed", "like", 0),
    rating("reply-fixme", "dislike", 1),
    rating("reply-dismissed", "like", 2),
]
FLAGS = [flag("reply-confirmed", 0), flag("reply-fixme", 1), flag("reply-dismissed", 2)]
REVIEWS = [
    review("reply-confirmed", "dismissed", 0),  # changed its mind: the latest review counts
    review("reply-confirmed", "confirmed", 1),
    review("reply-fixme", "needs-fix", 2, fixed="the right answer"),
    review("reply-dismissed", "dismissed", 3),
]


def responses(rows: list[dict], column: str) -> list[str]:
    return [row[column][-1]["content"] for row in rows]


@pytest.mark.parametrize("keep_flagged", [False, True])
def test_sft_leaves_confirmed_out_even_if_liked_and_keeps_dismissed(keep_flagged):
    rows = sft_rows(TURNS, RATINGS, FLAGS, reviews=REVIEWS, keep_flagged=keep_flagged, test_size=0)
    assert responses(rows, "completion") == ["the right answer", "fine answer"]  # the correction, in log order


def test_without_reviews_every_flag_keeps_its_reply_out():
    assert sft_rows(TURNS, RATINGS, FLAGS, test_size=0) == []
    assert kto_rows(TURNS, RATINGS, FLAGS, test_size=0) == []


@pytest.mark.parametrize("keep_flagged", [False, True])
def test_kto_never_labels_a_confirmed_reply_true(keep_flagged):
    rows = kto_rows(TURNS, RATINGS, FLAGS, reviews=REVIEWS, keep_flagged=keep_flagged, test_size=0)
    labelled = sorted((row["completion"][0]["content"], row["label"]) for row in rows)
    expected = [("fine answer", True)] + ([("wrong answer", False)] if keep_flagged else [])
    assert labelled == sorted(expected)


def test_dpo_pairs_a_corrected_reply_against_the_flagged_one():
    rows = dpo_rows(TURNS, RATINGS, FLAGS, reviews=REVIEWS, test_size=0, include_ids=True)
    (row,) = rows
    assert row["prompt"] == [{"role": "user", "content": "q2"}]
    assert row["chosen"] == [{"role": "assistant", "content": "the right answer"}]
    assert row["rejected"] == [{"role": "assistant", "content": "wrong answer"}]
    assert row["rejected_id"] == "reply-fixme" and row["chosen_id"] is None


def test_a_confirmed_liked_reply_is_never_chosen():
    """A regeneration pair whose liked reply has a confirmed flag gives no DPO row."""
    turns = [turn("first-reply", 0, "q", "bad", 0), turn("second-reply", 0, "q", "good but harmful", 1)]
    ratings = [rating("first-reply", "dislike", 0), rating("second-reply", "like", 1)]
    flags, reviews = [flag("second-reply", 0)], [review("second-reply", "confirmed", 0)]
    assert len(dpo_rows(turns, ratings, keep_flagged=True, test_size=0)) == 1
    assert dpo_rows(turns, ratings, flags, reviews=reviews, keep_flagged=True, test_size=0) == []


def test_reviews_in_a_data_dir_are_read(tmp_path):
    store = FeedbackStore(tmp_path)
    for record in [*TURNS, *RATINGS, *FLAGS, *REVIEWS]:
        store.append(record)
    store.close()
    assert responses(rows_from_data_dir("sft", tmp_path, test_size=0), "completion") == [
        "the right answer",
        "fine answer",
    ]
    (pair,) = rows_from_data_dir("dpo", tmp_path, test_size=0)
    assert pair["chosen"][0]["content"] == "the right answer"


def test_stats_count_the_decisions_that_shaped_the_export():
    from feedback.export import export_records

    stats = export_records("dpo", TURNS, RATINGS, FLAGS, reviews=REVIEWS).stats
    assert stats["reviews"] == {"confirmed": 1, "dismissed": 1, "needs-fix": 1, "correction_pairs": 1}
    assert "review_corrections" not in stats["rows_removed"]
