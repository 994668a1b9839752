"""The write gate: every record of every kind passes :meth:`FeedbackRecorder.write` before a shard."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_records

from feedback.chat import responder_stream
from feedback.recorder import FeedbackRecorder
from feedback.responders import EchoResponder
from feedback.review.desk import ReviewDesk
from feedback.store import FeedbackStore
from feedback.web.api import ChatAPI
from schemas.records import Record

REASONS = ("Inaccurate", "Harmful")


def chat_rate_flag_review(recorder: FeedbackRecorder) -> str:
    """One API chat, a rating, a flag and a review decision; returns the reply's message id."""
    api = ChatAPI(recorder, lambda _: responder_stream(EchoResponder()), "echo", {})
    *_, last = api.chat({"text": "my secret is 1234", "files": []}, "")
    api.rate(last["conversation_id"], last["message_id"], "like", "", "secret comment 1234")
    api.flag(last["conversation_id"], last["message_id"], ["Harmful"], "it said 1234")
    ReviewDesk(recorder, reviewers=["ann"]).decide(last["message_id"], "needs-fix", reviewer="ann", note="1234")
    return last["message_id"]


def test_every_record_kind_goes_through_the_gate_and_may_be_changed(tmp_path: Path):
    seen: list[str] = []

    def redact(record: Record) -> Record:
        seen.append(record.kind)
        return type(record).model_validate_json(record.model_dump_json().replace("1234", "<NUMBER>"))

    data = tmp_path / "data"
    chat_rate_flag_review(FeedbackRecorder(FeedbackStore(data), flag_reasons=REASONS, gate=[redact]))
    assert seen == ["turns", "ratings", "flags", "reviews"]
    for kind in seen:
        (record,) = read_records(data, kind)
        assert "1234" not in str(record) and "<NUMBER>" in str(record)


def test_a_gate_step_that_returns_none_keeps_the_record_out(tmp_path: Path):
    data = tmp_path / "data"
    recorder = FeedbackRecorder(FeedbackStore(data), flag_reasons=REASONS, gate=[lambda record: None])
    api = ChatAPI(recorder, lambda _: responder_stream(EchoResponder()), "echo", {})
    *_, first = api.chat("hello", "")
    *_, second = api.chat("and again", first["conversation_id"])  # the conversation goes on in memory
    assert second["turn_index"] == 1
    api.rate(first["conversation_id"], first["message_id"], "dislike")
    assert not any(read_records(data, kind) for kind in ("turns", "ratings", "flags", "reviews"))


def test_steps_run_in_order(tmp_path: Path):
    order: list[str] = []

    def step(name: str):  # noqa: ANN202 - a gate step
        def run(record: Record) -> Record:
            order.append(name)
            return record

        return run

    recorder = FeedbackRecorder(FeedbackStore(tmp_path / "data"), flag_reasons=REASONS, gate=[step("a"), step("b")])
    with pytest.raises(Exception, match="not a reply"):
        recorder.rate("conversation-1", "message-123", "like")  # refused before the gate
    assert order == []
    list(ChatAPI(recorder, lambda _: responder_stream(EchoResponder()), "echo", {}).chat("hi", ""))
    assert order == ["a", "b"]
