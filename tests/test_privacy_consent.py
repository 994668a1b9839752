"""Consent (``FEEDBACK_CONSENT``): a user who declines chats as usual and nothing about the
conversation is written, locally or on the Hub; ``required`` records only what the user agreed to.

The gate step on its own, the API and the page in process, and the real app (``python app.py``)
pushing to the test Hub. The consent step in Chromium is in ``test_browser_privacy.py``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import gradio as gr
import pytest
from conftest import AppProcess, hub_env, read_records
from fastapi.testclient import TestClient
from gradio_client import Client, handle_file
from support.page import PageSession
from support.records import make_turn

from feedback import FeedbackChatInterface
from feedback.chat import responder_stream
from feedback.errors import FeedbackError
from feedback.privacy.consent import ConsentGate, check_consent
from feedback.recorder import FeedbackRecorder
from feedback.responders import EchoResponder
from feedback.review.desk import ReviewDesk
from feedback.store import FeedbackStore
from feedback.web.api import ChatAPI
from feedback.web.page import AGREE, DECLINE, NOT_RECORDED, RECORDED
from feedback.web.uploads import upload_folder
from schemas.records import Flag, Rating, Review, Turn

REASONS = ("Inaccurate", "Harmful")
KINDS = ("turns", "ratings", "flags", "reviews")


def everything_in(folder: Path) -> bytes:
    """Every byte of every file under ``folder`` (shards, the index, uploads, the Hub's blobs)."""
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


def api_on(data_dir: Path, mode: str) -> tuple[ChatAPI, FeedbackRecorder]:
    recorder = FeedbackRecorder(FeedbackStore(data_dir), flag_reasons=REASONS, gate=[ConsentGate(mode)])  # type: ignore[arg-type]
    return ChatAPI(recorder, lambda _: responder_stream(EchoResponder()), "echo", {}), recorder


def chat(api: ChatAPI, text: str, conversation_id: str = "", **kwargs: object) -> dict:
    *_, last = api.chat(text, conversation_id, **kwargs)
    return last


def fake_upload(content: bytes, name: str = "notes.txt") -> Path:
    """A file where Gradio keeps uploads (what the page and ``handle_file`` produce)."""
    folder = upload_folder() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(content)
    return path


# -- the gate step ------------------------------------------------------------------------------


def turn(conversation_id: str) -> Turn:
    return make_turn(conversation_id, response="hello", model="echo")


def records_of(conversation_id: str) -> list:
    mid = "message-0001"
    return [
        turn(conversation_id),
        Rating(conversation_id=conversation_id, message_id=mid, rating="like"),
        Flag(conversation_id=conversation_id, message_id=mid, reasons=("Harmful",)),
        Review(conversation_id=conversation_id, message_id=mid, decision="confirmed", reviewer="ann"),
    ]


@pytest.mark.parametrize(
    ("mode", "answer", "kept"),
    [
        ("notice", None, KINDS),
        ("notice", True, KINDS),
        ("notice", False, ()),
        ("required", None, ("reviews",)),  # a reviewer's decision is not the user's record
        ("required", True, KINDS),
        ("required", False, ()),
    ],
)
def test_the_gate_keeps_a_conversation_out_as_its_user_answered(mode, answer, kept):
    gate = ConsentGate(mode)
    gate.answer("conversation-a", answer)
    assert tuple(r.kind for r in records_of("conversation-a") if gate(r) is not None) == kept
    assert gate.records("conversation-a") == ("turns" in kept)
    assert all(gate(r) is not None for r in records_of("conversation-b")) == (mode == "notice")  # another conversation


def test_no_answer_keeps_the_earlier_one_and_a_withdrawal_is_listed_for_deletion():
    gate = ConsentGate("required")
    assert gate.answer("conversation-a", True) is True
    assert gate.answer("conversation-a", None) is True
    assert all(gate(r) is not None for r in records_of("conversation-a"))
    assert gate.withdrawn() == {}
    assert gate.answer("conversation-a", False) is False
    assert gate.withdrawn() == {"conversation-a": 4}  # what a deletion has to remove
    assert all(gate(r) is None for r in records_of("conversation-a"))
    gate.answer("conversation-b", False)  # declined before anything was written: nothing to delete
    assert "conversation-b" not in gate.withdrawn()


def test_after_a_restart_a_conversation_found_in_the_data_dir_was_agreed_to():
    gate = ConsentGate("required")
    assert gate.answer("from-the-data-dir", None, has_history=True) is True
    assert gate.answer("new-conversation", None, has_history=False) is False
    assert gate.status("new-conversation") is None  # an id sent at random leaves no entry behind


@pytest.mark.parametrize("value", ["no", "false", 0, 1, [], {}])
def test_consent_must_be_true_false_or_left_out(value):
    assert (check_consent(True), check_consent(False), check_consent(None)) == (True, False, None)
    with pytest.raises(FeedbackError, match="consent must be true"):
        check_consent(value)


def test_a_recorder_without_a_consent_step_gets_one_first_in_its_gate(tmp_path):
    step = lambda record: record  # noqa: E731 - a gate step
    recorder = FeedbackRecorder(FeedbackStore(tmp_path / "data"), flag_reasons=REASONS, gate=[step])
    gate = ConsentGate.of(recorder)
    assert recorder.gate == (gate, step) and gate.mode == "notice"
    assert ConsentGate.of(recorder) is gate
    with pytest.raises(ValueError, match="differs"):
        ConsentGate.of(recorder, "required")


# -- the API in process -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["notice", "required"])
def test_declined_over_the_api_chatting_works_and_nothing_of_it_is_written(tmp_path, mode):
    data = tmp_path / "data"
    api, recorder = api_on(data, mode)
    upload = fake_upload(b"declined upload bytes 5d1f")
    first = chat(api, {"text": "my secret plan 7c2e", "files": [{"path": str(upload)}]}, consent=False)
    assert first["response"].startswith("You said: my secret plan 7c2e")
    cid = first["conversation_id"]
    second = chat(api, "and more 7c2e", cid)  # the answer holds for the conversation
    assert second["turn_index"] == 1
    regenerated = list(api.regenerate(cid, second["message_id"]))[-1]
    api.rate(cid, regenerated["message_id"], "like", comment="nice 7c2e")
    api.flag(cid, regenerated["message_id"], ["Harmful"], "bad 7c2e")
    with pytest.raises(FeedbackError, match="not a flagged reply"):  # the review queue never saw it
        ReviewDesk(recorder, reviewers=["ann"]).decide(regenerated["message_id"], "confirmed", reviewer="ann")
    stored = everything_in(data)
    assert cid.encode() not in stored and b"7c2e" not in stored and b"5d1f" not in stored
    assert not any(read_records(data, kind) for kind in KINDS)
    assert not (data / "files").exists() or not any((data / "files").iterdir())


def test_required_records_only_a_conversation_whose_user_agreed(tmp_path):
    data = tmp_path / "data"
    api, _ = api_on(data, "required")
    assert api.feedback_options()["consent"] == "required"
    unanswered = chat(api, "no answer given")
    agreed = chat(api, {"text": "yes please", "files": [{"path": str(fake_upload(b"agreed upload"))}]}, consent=True)
    chat(api, "still agreed", agreed["conversation_id"])
    api.rate(agreed["conversation_id"], agreed["message_id"], "like")
    api.rate(unanswered["conversation_id"], unanswered["message_id"], "like")
    turns = read_records(data, "turns")
    assert [t["messages"][-1]["content"] for t in turns] == ["yes please", "still agreed"]
    assert {r["conversation_id"] for r in read_records(data, "ratings")} == {agreed["conversation_id"]}
    (stored_file,) = (data / "files").iterdir()
    assert stored_file.read_bytes() == b"agreed upload"
    assert unanswered["conversation_id"].encode() not in everything_in(data)


def test_required_a_conversation_agreed_to_before_a_restart_goes_on_being_recorded(tmp_path):
    data = tmp_path / "data"
    before, _ = api_on(data, "required")
    reply = chat(before, "before the restart", consent=True)
    after, _ = api_on(data, "required")  # a new process on the same data dir
    after.rate(reply["conversation_id"], reply["message_id"], "dislike")
    chat(after, "after the restart", reply["conversation_id"])
    assert [r["rating"] for r in read_records(data, "ratings")] == ["dislike"]
    assert len(read_records(data, "turns")) == 2


def test_consent_of_the_wrong_type_is_refused_and_nothing_is_written(tmp_path):
    api, _ = api_on(tmp_path / "data", "notice")
    with pytest.raises(gr.Error, match="consent must be true"):
        chat(api, "hello", consent="no")
    assert not read_records(tmp_path / "data", "turns")


# -- the page in process ------------------------------------------------------------------------


def button(session: PageSession, label: str) -> gr.Button:
    return next(b for b in session.blocks.blocks.values() if isinstance(b, gr.Button) and b.value == label)


def page_on(data_dir: Path, consent: str) -> PageSession:
    demo = FeedbackChatInterface(
        lambda message, history: f"echo {message['text']}", data_dir=data_dir, multimodal=True, consent=consent
    )  # type: ignore[arg-type]
    return PageSession(TestClient(gr.routes.App.create_app(demo)), "browser-1")


def test_the_page_asks_first_and_a_declining_user_chats_without_records(tmp_path):
    data = tmp_path / "data"
    session = page_on(data, "required")
    with pytest.raises(AssertionError, match="First choose above"):
        session.send("before answering")
    session.fire(button(session, DECLINE), "click")
    assert any(NOT_RECORDED in str(v) for v in session.values.values())
    upload = fake_upload(b"page upload 91ab")
    file = {"path": str(upload), "meta": {"_type": "gradio.FileData"}}
    session.values[session.textbox._id] = {"text": "private 91ab", "files": [file]}
    session.fire(session.textbox, "submit")
    assert "echo private 91ab" in str(session.chat[-1]["content"])  # the chat works
    session.like(len(session.chat) - 1, True, comment="comment 91ab")
    session.clear()  # a new conversation: the answer holds
    session.send("after clearing 91ab")
    assert not any(read_records(data, kind) for kind in KINDS)
    assert b"91ab" not in everything_in(data)


def test_the_page_records_once_the_user_agreed(tmp_path):
    data = tmp_path / "data"
    session = page_on(data, "required")
    session.fire(button(session, AGREE), "click")
    assert any(RECORDED in str(v) for v in session.values.values())
    session.send("hello")
    session.like(len(session.chat) - 1, True)
    assert [t["response"] for t in read_records(data, "turns")] == ["echo hello"]
    assert len(read_records(data, "ratings")) == 1


def test_the_notice_page_has_no_consent_step_and_links_the_policy(tmp_path):
    demo = FeedbackChatInterface(
        lambda m, h: "ok", data_dir=tmp_path / "data", policy_url="https://example.com/privacy"
    )
    assert demo.consent_step is None and demo.consent.mode == "notice"
    assert 'href="https://example.com/privacy"' in demo.description and "recorded" in demo.description
    required = FeedbackChatInterface(
        lambda m, h: "ok", data_dir=tmp_path / "data2", consent="required", policy_url="https://example.com/privacy"
    )
    assert required.consent_step is not None and "recorded" not in (required.description or "")


# -- the real app, pushing to the test Hub ------------------------------------------------------


def test_declined_conversations_reach_neither_the_data_dir_nor_the_hub(hub, tmp_path):
    repo_id = "test-user/consent"
    data = tmp_path / "data"
    env = {
        **hub_env(hub, tmp_path),
        "FEEDBACK_DATA_DIR": str(data),
        "FEEDBACK_DATASET_REPO": repo_id,
        "FEEDBACK_SYNC_EVERY": "0.005",
        "FEEDBACK_CONSENT": "required",
        "FEEDBACK_POLICY_URL": "https://example.com/privacy",
    }
    declined_file, agreed_file = tmp_path / "declined.txt", tmp_path / "agreed.txt"
    declined_file.write_text("declined file e3f9")
    agreed_file.write_text("agreed file 0a4d")
    app = AppProcess(env, tmp_path / "app.log").wait_ready()
    try:
        client = Client(app.url, verbose=False)
        assert client.predict(api_name="/feedback_options")["policy_url"] == "https://example.com/privacy"
        declined = client.predict(
            {"text": "declined e3f9", "files": [handle_file(str(declined_file))]}, "", consent=False, api_name="/chat"
        )
        assert declined["response"].startswith("You said: declined e3f9")
        cid = declined["conversation_id"]
        more = client.predict("more e3f9", cid, api_name="/chat")
        client.predict(cid, more["message_id"], "dislike", "", "comment e3f9", api_name="/rate")
        client.predict(cid, more["message_id"], ["Harmful"], "flag e3f9", api_name="/flag")
        unanswered = client.predict("unanswered e3f9", "", api_name="/chat")
        agreed = client.predict(
            {"text": "agreed 0a4d", "files": [handle_file(str(agreed_file))]}, "", consent=True, api_name="/chat"
        )
        client.predict(agreed["conversation_id"], agreed["message_id"], "like", api_name="/rate")
        client.close()
        assert app.terminate() == 0, app.log()  # the final push
    finally:
        app.kill()
    local = everything_in(data)
    hub_bytes = everything_in(tmp_path / "hub")
    for secret in (cid, unanswered["conversation_id"], "e3f9"):
        assert secret.encode() not in local, secret
        assert secret.encode() not in hub_bytes, secret
    assert "e3f9" not in app.log()  # no message text in the log either
    pushed = hub.files(repo_id)
    assert b"agreed 0a4d" in b"".join(v for k, v in pushed.items() if k.startswith("turns/"))
    assert b"agreed file 0a4d" in pushed.values()  # the agreed upload, stored and pushed
    assert [r["conversation_id"] for r in read_records(data, "turns")] == [agreed["conversation_id"]]
    assert [r["conversation_id"] for r in read_records(data, "ratings")] == [agreed["conversation_id"]]


def test_a_page_whose_session_expired_asks_again_and_records_nothing_meanwhile(tmp_path):
    data = tmp_path / "data"
    session = page_on(data, "required")
    session.fire(button(session, DECLINE), "click")
    session.send("declined 4b7c")
    expired = PageSession(session.http, "browser-1-after-expiry")  # the server forgot the session's state
    with pytest.raises(AssertionError, match="reload the page"):
        expired.send("after expiry 4b7c")  # Gradio's chat history is gone too: a new conversation
    assert b"4b7c" not in everything_in(data)


def test_required_a_conversation_never_answered_stays_unrecorded_as_it_goes_on(tmp_path):
    """Its turns live in memory only: going on with it (a second turn, a rating, a retry) is no sign of
    consent; only turns found in the data dir (written before a restart) are."""
    data = tmp_path / "data"
    api, _ = api_on(data, "required")
    first = chat(api, "no answer given")
    cid = first["conversation_id"]
    api.rate(cid, first["message_id"], "like")
    second = chat(api, "still no answer", cid)
    assert second["turn_index"] == 1  # the conversation went on
    api.flag(cid, second["message_id"], ["Harmful"])
    *_, again = api.regenerate(cid, second["message_id"])
    assert again["done"]
    assert cid.encode() not in everything_in(data) and b"no answer" not in everything_in(data)
