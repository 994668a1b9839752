"""Reviewing flagged replies: the queue, filters, decisions, stats, and who may see them."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest
from conftest import TOKEN, hub_env, read_records
from gradio_client import Client
from support.review import desk_on, seed

from feedback.review import QueueFilter, compute_stats
from feedback.store import FeedbackStore

REPO = Path(__file__).resolve().parent.parent


class TestQueue:
    def test_queue_holds_exactly_the_flagged_replies_newest_first_with_context(self, tmp_path):
        desk = desk_on(seed(tmp_path))
        items = desk.queue()
        assert [i.message_id for i in items] == ["msg-c0000", "msg-b0000", "msg-a1111"]
        a = items[2]
        assert [m.content for m in a.turn.messages] == ["q0", "tell me more"] and a.turn.response == "re tell me more"
        assert a.reason_counts == {"Inaccurate": 2, "Harmful": 1} and len(a.flags) == 2
        assert a.rating == "dislike" and [r.rating for r in a.ratings] == ["like", "dislike"]
        assert a.comments() == ["flag (Inaccurate): bad date", "rating (dislike): actually wrong"]
        assert all(i.status == "open" for i in items)

    @pytest.mark.parametrize(
        ("queue_filter", "expected"),
        [
            (QueueFilter(reason="Inaccurate"), ["msg-a1111"]),
            (QueueFilter(reason="Harmful"), ["msg-a1111"]),
            (QueueFilter(model="m2"), ["msg-b0000"]),
            (QueueFilter(since=date(2026, 3, 2)), ["msg-c0000", "msg-b0000"]),
            (QueueFilter(until=date(2026, 3, 1)), ["msg-a1111"]),
            (QueueFilter(since=date(2026, 3, 2), until=date(2026, 3, 2)), ["msg-b0000"]),
            (QueueFilter(reason="Spam"), []),
        ],
    )
    def test_filters(self, tmp_path, queue_filter, expected):
        assert [i.message_id for i in desk_on(seed(tmp_path)).queue(queue_filter)] == expected

    def test_decisions_change_status_latest_wins(self, tmp_path):
        store = seed(tmp_path)
        desk = desk_on(store, reviewers=["ann"])
        desk.decide("msg-a1111", "needs-fix", reviewer="ann", corrected_reply="The date is 1969.", note="fixable")
        desk.decide("msg-b0000", "dismissed", reviewer="ann")
        desk.decide("msg-b0000", "confirmed", reviewer="ann")
        assert [i.message_id for i in desk.queue()] == ["msg-c0000"]
        assert [i.message_id for i in desk.queue(QueueFilter(status="confirmed"))] == ["msg-b0000"]
        (fix,) = desk.queue(QueueFilter(status="needs-fix"))
        assert fix.review.corrected_reply == "The date is 1969." and fix.review.reviewer == "ann"
        reviews = read_records(tmp_path, "reviews")
        assert [(r["message_id"], r["decision"]) for r in reviews] == [
            ("msg-a1111", "needs-fix"),
            ("msg-b0000", "dismissed"),
            ("msg-b0000", "confirmed"),
        ]
        assert reviews[0]["conversation_id"] == "conv-aaaa"

    @pytest.mark.parametrize(
        ("message_id", "decision", "reviewer", "error"),
        [
            ("msg-a0000", "confirmed", "ann", "not a flagged reply"),
            ("msg-a1111", "approve", "ann", "not one of"),
            ("msg-a1111", "confirmed", "mallory", "not a reviewer"),
            ("msg-a1111", "confirmed", "", "sign in"),
        ],
    )
    def test_bad_decisions_are_refused_and_write_nothing(self, tmp_path, message_id, decision, reviewer, error):
        from feedback.errors import FeedbackError

        desk = desk_on(seed(tmp_path), reviewers=["ann"])
        with pytest.raises(FeedbackError, match=error):
            desk.decide(message_id, decision, reviewer=reviewer)
        assert read_records(tmp_path, "reviews") == []


class TestStats:
    def test_numbers(self, tmp_path):
        store = seed(tmp_path)
        stats = compute_stats(desk_on(store).records())
        per_day = {(r.day, r.rating): r.count for r in stats.ratings_per_day.itertuples()}
        assert per_day == {("2026-03-01", "dislike"): 1, ("2026-03-02", "like"): 1, ("2026-03-03", "like"): 1}
        models = stats.per_model.set_index("model")
        assert models.loc["m1", "replies"] == 4 and models.loc["m1", "like_rate"] == 0.5
        assert models.loc["m2", "like_rate"] == 1.0
        assert dict(zip(stats.flags_per_reason.reason, stats.flags_per_reason["count"], strict=True)) == {
            "Inaccurate": 2,
            "Harmful": 1,
            "Off-topic": 1,
            "Other": 1,
        }
        assert dict(zip(stats.conversation_lengths.turns, stats.conversation_lengths.conversations, strict=True)) == {
            1: 1,
            2: 2,
        }
        assert stats.open_queue == 3

    def test_stats_command_prints_the_tables(self, tmp_path):
        seed(tmp_path / "data")
        result = subprocess.run(
            [sys.executable, "-m", "feedback", "stats", "--source", str(tmp_path / "data")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "Open review queue: 3" in result.stdout
        assert "Inaccurate" in result.stdout and "2026-03-01" in result.stdout and "0.500" in result.stdout


class TestAccess:
    def test_anonymous_users_cannot_open_the_page_or_call_its_api(self, served):
        page = httpx.get(f"{served}/review/", follow_redirects=True)
        assert "Review flagged replies" not in page.text
        assert httpx.get(f"{served}/review/config").status_code == 401
        response = httpx.post(f"{served}/review/gradio_api/call/queue_items", json={"data": []})
        assert response.status_code in (401, 403)
        with pytest.raises(Exception, match="(?i)login|auth|401"):
            Client(f"{served}/review/", verbose=False)
        # the chat page stays open to everyone
        assert Client(served, verbose=False).predict("hi", "", api_name="/chat")["done"]

    def test_a_signed_in_non_reviewer_is_refused(self, served, data_dir):
        client = Client(f"{served}/review/", auth=("eve", "pw-eve"), verbose=False)
        with pytest.raises(Exception, match="not a reviewer"):
            client.predict(api_name="/queue_items")
        with pytest.raises(Exception, match="not a reviewer"):
            client.predict("msg-a1111", "confirmed", api_name="/decide")
        assert read_records(data_dir, "reviews") == []

    def test_a_reviewer_sees_the_queue_and_decides(self, served, data_dir):
        client = Client(f"{served}/review/", auth=("ann", "pw-ann"), verbose=False)
        items = client.predict("Inaccurate", "", "", "", "open", api_name="/queue_items")
        assert [i["message_id"] for i in items] == ["msg-a1111"]
        assert items[0]["flag_count"] == 2 and items[0]["reasons"] == {"Inaccurate": 2, "Harmful": 1}
        assert items[0]["prompt"][-1]["content"] == "tell me more"
        review = client.predict("msg-a1111", "needs-fix", "A corrected reply.", "see ticket", api_name="/decide")
        (stored,) = read_records(data_dir, "reviews")
        assert stored == review and stored["reviewer"] == "ann" and stored["decision"] == "needs-fix"
        assert client.predict("", "", "", "", "open", api_name="/queue_items")[-1]["message_id"] != "msg-a1111"


def test_stats_and_review_read_a_dataset_repo(hub, tmp_path):
    """A reviewer on their own machine: the repo is pulled into a local data dir they can append to."""
    import os

    from huggingface_hub import HfApi

    from feedback.hub.transfer import push_folder

    seed(tmp_path / "data").close()
    push_folder(tmp_path / "data", "test-user/reviewable", token=TOKEN, api=HfApi(endpoint=hub.endpoint, token=TOKEN))
    env = {**os.environ, **hub_env(hub, tmp_path)}
    command = [
        sys.executable,
        "-m",
        "feedback",
        "stats",
        "--source",
        "test-user/reviewable",
        "--data-dir",
        str(tmp_path / "pulled"),
    ]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Open review queue: 3" in result.stdout
    desk = desk_on(FeedbackStore(tmp_path / "pulled"))
    desk.decide("msg-b0000", "dismissed", reviewer="local-reviewer")
    assert [i.message_id for i in desk.queue()] == ["msg-c0000", "msg-a1111"]
