"""What an ML engineer gets, row by row: SFT prompt-completion rows, reviewers' corrections as SFT rows,
the DPO pairing rule and ``pairs="latest"``, the agreement ``count``, disliked replies flagged for
quality kept as negatives, and no file for an empty split."""

from __future__ import annotations

import json

import pytest
from support.export_log import U1, Log, compact, flagged_dislike, regenerated_four_times

from feedback.export import ExportOptions, export_records, run_export
from feedback.rules import QUALITY_REASONS
from schemas.records import Review, Turn

Q = (("user", "What is the capital of France?"),)
SYSTEM = ("system", "Answer in one word.")


def review(log: Log, turn: Turn, decision: str, fixed: str | None = None) -> Review:
    return Review(
        conversation_id=turn.conversation_id,
        message_id=turn.message_id,
        decision=decision,
        corrected_reply=fixed,
        reviewer="ann",
        timestamp=log.now(),
    )


def export(log: Log, fmt: str, reviews: list[Review] = (), **options: object):  # noqa: ANN201 - an Export
    options.setdefault("test_size", 0)
    return export_records(fmt, log.turns, log.ratings, log.flags, ExportOptions(**options), reviews=reviews)


# -- SFT: prompt-completion by default, messages on request (issue 11, item 11) -----------------


def test_sft_rows_are_conversational_prompt_completion_with_the_system_message_first():
    log = Log()
    first = log.turn("conv-sys", 0, [SYSTEM, *U1], "Lyon.")
    log.rate(first, "dislike")
    second = log.turn("conv-sys", 1, [SYSTEM, *U1, ("assistant", "Lyon."), ("user", "Sure?")], "Paris.")
    log.rate(second, "like")
    (row,) = export(log, "sft").rows()
    assert list(row) == ["prompt", "completion"]
    assert row["prompt"] == [
        {"role": "system", "content": "Answer in one word."},
        *[{"role": role, "content": text} for role, text in (*Q, ("assistant", "Lyon."), ("user", "Sure?"))],
    ]
    assert row["completion"] == [{"role": "assistant", "content": "Paris."}]  # the liked reply, and nothing else


def test_messages_keeps_the_language_modeling_format():
    log = Log()
    log.rate(log.turn("conv-sys", 0, [SYSTEM, *U1], "Paris."), "like")
    (row,) = export(log, "sft", messages=True).rows()
    (default,) = export(log, "sft").rows()
    assert list(row) == ["messages"] and row["messages"] == default["prompt"] + default["completion"]
    with_ids = export(log, "sft", messages=True, include_ids=True)
    assert list(with_ids.rows()[0]) == ["messages", "conversation_id", "message_id", "corrected_id", "count"]
    assert list(with_ids.to_dataset_dict()["train"].features) == list(with_ids.rows()[0])


def test_messages_is_an_sft_option_only():
    log = Log()
    regenerated = log.turn("conv-regen", 0, U1, "Lyon.")
    log.rate(regenerated, "dislike")
    log.rate(log.turn("conv-regen", 0, U1, "Paris.", regenerated_from=regenerated.message_id), "like")
    for fmt in ("dpo", "kto", "flags"):
        assert export(log, fmt, messages=True).rows() == export(log, fmt).rows()


# -- a reviewer's correction is an SFT row (issue 14, item 2) ------------------------------------


def corrected_log(decision: str = "needs-fix", fixed: str | None = "Paris.") -> tuple[Log, list[Review], Turn]:
    log = Log()
    wrong = log.turn("conv-fix", 0, [SYSTEM, *U1], "Lyon.")
    log.rate(wrong, "dislike")
    log.flag(wrong, "Inaccurate")
    return log, [review(log, wrong, decision, fixed)], wrong


@pytest.mark.parametrize("decision", ["needs-fix", "confirmed", "dismissed"])
def test_a_correction_is_an_sft_row_whatever_the_decision(decision):
    log, reviews, wrong = corrected_log(decision)
    result = export(log, "sft", reviews, include_ids=True)
    (row,) = result.rows()
    assert row["prompt"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": U1[0][1]},
    ]
    assert row["completion"] == [{"role": "assistant", "content": "Paris."}]
    assert (row["message_id"], row["corrected_id"], row["count"]) == (None, wrong.message_id, 1)
    assert result.stats["reviews"]["correction_rows"] == 1
    (pair,) = export(log, "dpo", reviews).rows()  # the same correction as DPO's chosen, as before
    assert pair["chosen"] == row["completion"] and pair["prompt"] == row["prompt"]


def test_a_later_review_without_a_correction_withdraws_it():
    log, reviews, wrong = corrected_log()
    reviews.append(review(log, wrong, "confirmed"))
    assert export(log, "sft", reviews).rows() == []


def test_a_correction_comes_right_after_its_reply_and_follows_the_filters():
    log = Log()
    log.rate(log.turn("conv-aaa", 0, [("user", "one")], "uno"), "like")
    wrong = log.turn("conv-aaa", 1, [("user", "two")], "tres", model="m2")
    log.flag(wrong, "Inaccurate")
    log.rate(log.turn("conv-aaa", 2, [("user", "three")], "tres"), "like")
    reviews = [review(log, wrong, "needs-fix", "dos")]
    assert [row["completion"][0]["content"] for row in export(log, "sft", reviews).rows()] == ["uno", "dos", "tres"]
    assert [row["completion"][0]["content"] for row in export(log, "sft", reviews, models=("m1",)).rows()] == [
        "uno",
        "tres",
    ]


def test_a_correction_and_a_liked_reply_of_the_same_text_make_one_row():
    log, reviews, wrong = corrected_log()
    log.rate(log.turn("conv-fix", 0, [SYSTEM, *U1], "Paris.", regenerated_from=wrong.message_id), "like")
    result = export(log, "sft", reviews, include_ids=True)
    (row,) = result.rows()
    assert row["corrected_id"] == wrong.message_id and row["count"] == 1  # one conversation
    assert result.stats["rows_removed"]["duplicate"] == 1


# -- DPO pairing: every pair, or the latest (issue 14, item 3) -----------------------------------


def test_every_liked_reply_pairs_with_every_disliked_one_by_default():
    log = Log()
    regenerated_four_times(log)
    pairs = sorted(compact("dpo", row)[1:] for row in export(log, "dpo").rows())
    assert pairs == [("It is Paris.", "Lyon."), ("It is Paris.", "Nice."), ("Paris.", "Lyon."), ("Paris.", "Nice.")]
    assert export(log, "dpo", pairs="all").rows() == export(log, "dpo").rows()


def test_pairs_latest_gives_one_pair_per_prompt_latest_liked_against_latest_disliked():
    log = Log()
    regenerated_four_times(log)
    regenerated_reply = log.turn("conv-other", 0, [("user", "Hi")], "Go away.")
    log.rate(regenerated_reply, "dislike")
    log.rate(
        log.turn("conv-other", 0, [("user", "Hi")], "Hello!", regenerated_from=regenerated_reply.message_id), "like"
    )
    result = export(log, "dpo", pairs="latest")
    assert [compact("dpo", row)[1:] for row in result.rows()] == [("It is Paris.", "Nice."), ("Hello!", "Go away.")]
    assert result.stats["rows_removed"]["not_latest_pair"] == 3
    assert result.stats["left_out"].get("no_opposite_rating", 0) == 0  # every reply had a pair to be in


def test_latest_is_by_the_time_of_the_reply_not_the_order_of_the_records():
    log = Log()
    replies = regenerated_four_times(log)
    log.turns[:] = [*reversed(replies)]  # a later shard read first
    assert [compact("dpo", row)[1:] for row in export(log, "dpo", pairs="latest").rows()] == [("It is Paris.", "Nice.")]


def test_pairs_latest_across_conversations_gives_one_pair_per_prompt():
    log = Log()
    regenerated_four_times(log, "conv-aaa")
    regenerated_four_times(log, "conv-bbb")
    per_conversation = export(log, "dpo", pairs="latest", include_ids=True)
    assert [row["count"] for row in per_conversation.rows()] == [2]  # one pair in each: identical rows, kept once
    assert per_conversation.stats["rows_removed"]["not_latest_pair"] == 6
    across = export(log, "dpo", pairs="latest", cross_conversation=True, include_ids=True)
    assert [(row["count"], row["conversation_id"]) for row in across.rows()] == [(1, "conv-bbb")]
    assert across.stats["rows_removed"]["not_latest_pair"] == 15


def test_latest_pair_of_the_same_text_is_no_pair():
    log = Log()
    first = log.turn("conv-same", 0, U1, "Paris.")
    log.rate(first, "dislike")
    log.rate(log.turn("conv-same", 0, U1, "Lyon.", regenerated_from=first.message_id), "like")
    log.rate(log.turn("conv-same", 0, U1, "Paris.", regenerated_from=first.message_id), "like")
    result = export(log, "dpo", pairs="latest")
    assert result.rows() == [] and result.stats["rows_removed"]["identical_chosen_rejected"] == 1


def test_pairs_must_be_all_or_latest():
    with pytest.raises(ValueError, match="'pairs' must be one of all, latest, not 'first'"):
        ExportOptions(pairs="first")


# -- identical rows: one row and a count (issue 14, item 4) --------------------------------------


def two_users_like_the_same_reply(log: Log) -> None:
    for conversation in ("conv-ann", "conv-bob"):
        log.rate(log.turn(conversation, 0, U1, "Paris."), "like")


@pytest.mark.parametrize("fmt", ["sft", "kto"])
def test_two_conversations_liking_the_same_reply_give_one_row_of_count_two(fmt):
    log = Log()
    two_users_like_the_same_reply(log)
    log.rate(log.turn("conv-cid", 0, U1, "Lyon."), "like")
    result = export(log, fmt, include_ids=True)
    assert [(row["completion"][0]["content"], row["count"], row["conversation_id"]) for row in result.rows()] == [
        ("Paris.", 2, "conv-ann"),
        ("Lyon.", 1, "conv-cid"),
    ]
    assert result.stats["rows_by_count"] == {"train": {"1": 1, "2": 1}, "test": {}}
    assert all("count" not in row for row in export(log, fmt).rows())  # only with the ids


def test_the_count_is_of_distinct_conversations():
    log = Log()
    first = log.turn("conv-ann", 0, U1, "Paris.")
    log.rate(first, "like")
    log.rate(log.turn("conv-ann", 0, U1, "Paris.", regenerated_from=first.message_id), "like")  # same text again
    result = export(log, "sft", include_ids=True)
    assert [row["count"] for row in result.rows()] == [1] and result.stats["rows_removed"]["duplicate"] == 1


def test_identical_pairs_of_two_conversations_count_two():
    log = Log()
    for conversation in ("conv-ann", "conv-bob"):
        first = log.turn(conversation, 0, U1, "Lyon.")
        log.rate(first, "dislike")
        log.rate(log.turn(conversation, 0, U1, "Paris.", regenerated_from=first.message_id), "like")
    (row,) = export(log, "dpo", include_ids=True).rows()
    assert row["count"] == 2 and list(row)[-1] == "count"


def test_the_flags_queue_has_no_count():
    log = Log()
    turn = log.turn("conv-flag", 0, U1, "Paris.")
    log.flag(turn, "Other")
    (row,) = export(log, "flags", include_ids=True).rows()
    assert "count" not in row


def test_counts_reach_the_files_and_the_stats(tmp_path):
    log = Log()
    two_users_like_the_same_reply(log)
    data_dir = log.write(tmp_path / "data")
    written = run_export(
        "kto", str(data_dir), tmp_path / "out", ExportOptions(test_size=0, include_ids=True), progress=False
    )
    lines = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert [row["count"] for row in lines] == [2] and lines == written.rows() == export(
        log, "kto", include_ids=True
    ).rows()
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["rows_by_count"]["train"] == {"2": 1}
    assert not list((tmp_path / "out").glob(".*"))  # no partial file left


# -- a disliked reply flagged for quality stays a negative (issue 14, item 6) --------------------


@pytest.mark.parametrize("reasons", [("Inaccurate",), ("Off-topic",), ("Inaccurate", "Off-topic")])
def test_a_disliked_reply_flagged_for_quality_keeps_its_pair_and_its_kto_row(reasons):
    log = Log()
    flagged_dislike(log, *reasons)
    assert [compact("dpo", row) for row in export(log, "dpo").rows()] == [(Q, "Paris.", "Lyon.")]
    assert [compact("kto", row) for row in export(log, "kto").rows()] == [(Q, "Lyon.", False), (Q, "Paris.", True)]
    assert QUALITY_REASONS == ("Inaccurate", "Off-topic")


@pytest.mark.parametrize("reasons", [("Harmful",), ("Other",), ("Inaccurate", "Harmful")])
def test_any_other_reason_keeps_the_reply_out(reasons):
    log = Log()
    flagged_dislike(log, *reasons)
    result = export(log, "dpo")
    assert result.rows() == [] and result.stats["left_out"]["flagged"] == 1
    assert [compact("kto", row) for row in export(log, "kto").rows()] == [(Q, "Paris.", True)]


def test_the_reasons_are_configurable():
    log = Log()
    flagged_dislike(log, "Other")
    assert len(export(log, "dpo", keep_flagged_reasons=("Other",)).rows()) == 1
    log = Log()
    flagged_dislike(log, "Inaccurate")
    assert export(log, "dpo", keep_flagged_reasons=()).rows() == []
    with pytest.raises(ValueError, match="must be a list of reasons"):
        ExportOptions(keep_flagged_reasons="Inaccurate")


def test_a_flag_always_keeps_a_liked_reply_out():
    log = Log()
    first = log.turn("conv-liked-flag", 0, U1, "Lyon.")
    log.rate(first, "dislike")
    second = log.turn("conv-liked-flag", 0, U1, "Paris.", regenerated_from=first.message_id)
    log.rate(second, "like")
    log.flag(second, "Inaccurate")
    assert export(log, "dpo").rows() == [] and export(log, "sft").rows() == []
    assert [row["label"] for row in export(log, "kto").rows()] == [False]


def test_a_confirmed_quality_flag_on_a_disliked_reply_is_still_a_negative():
    log = Log()
    flagged_dislike(log, "Inaccurate")
    reviews = [review(log, log.turns[0], "confirmed")]
    assert len(export(log, "dpo", reviews).rows()) == 1


def test_the_card_says_which_flags_keep_a_negative():
    from feedback.export.formats import get_format

    options = ExportOptions()
    assert "flagged only as `Inaccurate` or `Off-topic` stays in as `rejected`" in get_format("dpo").card(options)
    assert "stays in as `label` false" in get_format("kto").card(options)
    assert "flagged only as `Other` stays" in get_format("dpo").card(ExportOptions(keep_flagged_reasons=("Other",)))
    assert "flagged only" not in get_format("dpo").card(ExportOptions(keep_flagged_reasons=()))


# -- an empty split has no file (issue 14, item 1) -----------------------------------------------


def test_an_empty_split_has_no_file_and_stats_say_so(tmp_path):
    log = Log()
    two_users_like_the_same_reply(log)
    data_dir = log.write(tmp_path / "data")
    out = tmp_path / "out"
    run_export("sft", str(data_dir), out, ExportOptions(test_size=0.5, seed=1), progress=False)
    before = json.loads((out / "stats.json").read_text())
    result = run_export("sft", str(data_dir), out, ExportOptions(test_size=0), progress=False)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["files"] == {"train": "train.jsonl", "test": None} and stats["rows"]["test"] == 0
    assert sorted(path.name for path in out.iterdir()) == ["stats.json", "train.jsonl"]  # an earlier test.jsonl: gone
    assert before["files"]["test"] == ("test.jsonl" if before["rows"]["test"] else None)
    assert result.rows("test") == [] and len(result.rows()) == 1


def test_an_export_with_no_rows_writes_only_its_stats(tmp_path):
    log = Log()
    log.turn("conv-unrated", 0, U1, "Paris.")
    result = run_export("dpo", str(log.write(tmp_path / "data")), tmp_path / "out", progress=False)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["stats.json"]
    assert result.rows() == [] and json.loads((tmp_path / "out" / "stats.json").read_text())["files"] == {
        "train": None,
        "test": None,
    }
