"""The chat page's events, driven in process through the app's HTTP API (``/gradio_api/run/...``),
the only way to send the ``event_data`` of a ``.like`` event without a browser."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from conftest import read_records
from fastapi.testclient import TestClient
from support.page import PageSession, answer

from feedback import FeedbackCallback, FeedbackChatInterface, FeedbackRecorder, FeedbackStore, attach_feedback


@pytest.fixture
def page(tmp_path: Path):
    demo = FeedbackChatInterface(answer, data_dir=tmp_path / "data", multimodal=True, model="test-fn")
    http = TestClient(gr.routes.App.create_app(demo))
    return PageSession(http, "browser-1"), tmp_path / "data"


def turn_ids(data_dir: Path) -> list[str]:
    return [t["message_id"] for t in read_records(data_dir, "turns")]


def test_like_dislike_undo_and_flag_map_positions_to_message_ids(page):
    session, data_dir = page
    session.send("one")
    session.send("two")
    first, second = turn_ids(data_dir)

    assert session.like(3, True, comment="great") == ""  # the comment box is emptied
    session.like(1, False)
    session.like(1, "")
    session.like(3, "Harmful")

    ratings = read_records(data_dir, "ratings")
    assert [(r["message_id"], r["rating"], r["comment"]) for r in ratings] == [
        (second, "like", "great"),
        (first, "dislike", None),
        (first, None, None),
    ]
    (flag,) = read_records(data_dir, "flags")
    assert flag["message_id"] == second and flag["reasons"] == ["Harmful"] and flag["source"] == "ui"
    turns = read_records(data_dir, "turns")
    assert {t["conversation_id"] for t in turns} == {ratings[0]["conversation_id"], flag["conversation_id"]}
    assert [t["model"] for t in turns] == ["test-fn", "test-fn"]


def test_retry_and_undo_keep_the_mapping_right(page):
    session, data_dir = page
    session.send("one")
    session.send("two")
    session.retry()
    first, second, regenerated = turn_ids(data_dir)
    session.like(3, True)

    session.undo()
    session.send("two, edited")
    edited = turn_ids(data_dir)[-1]
    session.like(3, False)
    session.like(1, "Other")

    turns = {t["message_id"]: t for t in read_records(data_dir, "turns")}
    assert turns[regenerated]["regenerated_from"] == second and turns[regenerated]["turn_index"] == 1
    assert turns[edited]["edited_from"] == regenerated and turns[edited]["regenerated_from"] is None
    assert turns[edited]["messages"][-1]["content"] == "two, edited"
    ratings = read_records(data_dir, "ratings")
    assert [(r["message_id"], r["rating"]) for r in ratings] == [(regenerated, "like"), (edited, "dislike")]
    assert read_records(data_dir, "flags")[0]["message_id"] == first


def test_clear_starts_a_new_conversation_and_sessions_differ(page):
    session, data_dir = page
    session.send("one")
    session.clear()
    session.send("fresh start")
    other = PageSession(session.http, "browser-2")
    other.send("someone else")

    turns = read_records(data_dir, "turns")
    assert len({t["conversation_id"] for t in turns}) == 3
    assert turns[1]["turn_index"] == 0 and [m["content"] for m in turns[1]["messages"]] == ["fresh start"]


def test_rating_a_reply_not_logged_yet_is_refused(page):
    session, data_dir = page
    session.chat = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "partial"}]},
    ]
    response = session.http.post(
        "/gradio_api/run/on_like",
        json={
            "data": [session.chat, None, ""],
            "session_hash": "fresh",
            "event_data": {"index": 1, "value": "partial", "liked": True},
        },
    )
    assert response.status_code == 200, response.text  # a warning in plain words, not an error
    comment, _, shown = response.json()["data"]
    assert shown["feedback_value"] == [None]  # the page does not keep the thumb highlighted
    assert read_records(data_dir, "ratings") == []


def test_page_uses_the_real_app_and_its_records(tmp_path):
    """The app's own page: a turn through the page chain is logged with the page source."""
    from feedback.app import build_app
    from schemas.settings import Settings

    demo = build_app(Settings(data_dir=tmp_path / "data"))
    session = PageSession(TestClient(gr.routes.App.create_app(demo)), "browser-1")
    session.send("hello")
    (turn,) = read_records(tmp_path / "data", "turns")
    assert turn["source"] == "ui" and turn["model"] == "echo" and turn["turn_index"] == 0
    # gradio's /run returns the first chunk of a stream and closes it: like a user pressing stop,
    # the reply shown so far is what gets recorded
    assert turn["response"] == session.chat[-1]["content"][0]["text"]


def test_callback_works_as_a_gr_interface_flagging_callback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Gradio's default flagging folder would be ./.gradio/flagged
    callback = FeedbackCallback(data_dir=tmp_path / "data", flag_reasons=["Wrong"])
    demo = gr.Interface(
        lambda text, temperature, style: text.upper(),
        [gr.Textbox(label="text"), gr.Slider(0, 2, label="Temperature"), gr.Radio(["a", "b"], label="Style")],
        gr.Textbox(label="shout"),
        flagging_mode="manual",
        flagging_options=["Like", "Dislike", "Wrong"],
        flagging_callback=callback,
    )
    http = TestClient(gr.routes.App.create_app(demo))
    flag_fns = [fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "Flag"]
    assert len(flag_fns) == 3
    for fn in flag_fns:
        response = http.post(
            f"/gradio_api/run/{fn.api_name}", json={"data": ["hey", 0.4, "b", "HEY"], "session_hash": "s"}
        )
        assert response.status_code == 200, response.text

    turns = read_records(tmp_path / "data", "turns")
    ratings = read_records(tmp_path / "data", "ratings")
    flags = read_records(tmp_path / "data", "flags")
    assert len(turns) == 3 and all(t["source"] == "interface" and t["response"] == "HEY" for t in turns)
    assert turns[0]["messages"] == [{"role": "user", "content": "hey", "files": []}]  # the other inputs are params
    assert turns[0]["params"]["temperature"] == 0.4
    assert turns[0]["params"]["inputs"] == [{"name": "Temperature", "value": "0.4"}, {"name": "Style", "value": '"b"'}]
    assert [r["rating"] for r in ratings] == ["like", "dislike"]
    assert {r["source"] for r in ratings} == {f["source"] for f in flags} == {"interface"}
    assert flags[0]["reasons"] == ["Wrong"] and flags[0]["message_id"] == turns[2]["message_id"]
    assert callback.count == 3
    assert not (tmp_path / ".gradio" / "flagged").exists() or not any(
        (tmp_path / ".gradio" / "flagged").rglob("*.jsonl")
    )


def test_attach_feedback_in_your_own_blocks(tmp_path):
    with gr.Blocks() as demo:
        chatbot = gr.Chatbot()
        box = gr.Textbox()
        feedback = attach_feedback(chatbot, data_dir=tmp_path / "data", model="my-model")

        def respond(message: str, history: list) -> tuple[str, list]:
            return "", [*history, {"role": "user", "content": message}, {"role": "assistant", "content": "ok!"}]

        box.submit(respond, [box, chatbot], [box, chatbot], api_name="respond").then(
            feedback.log_turn, [chatbot, feedback.session], [feedback.session], api_name="log_turn"
        )
    session = PageSession(TestClient(gr.routes.App.create_app(demo)), "own-blocks")
    session.values[box._id] = "hello"
    session.fire(box, "submit")
    session.like(1, True)

    (turn,) = read_records(tmp_path / "data", "turns")
    (rating,) = read_records(tmp_path / "data", "ratings")
    assert turn["response"] == "ok!" and turn["model"] == "my-model" and turn["latency_ms"] is None
    assert rating["message_id"] == turn["message_id"] and rating["rating"] == "like"


@pytest.mark.parametrize(
    ("kwargs", "menu"),
    [
        ({"flagging_mode": "manual"}, ("Like", "Dislike", "Inaccurate", "Harmful", "Off-topic", "Other")),
        ({"flagging_options": ["Like", "Spam", "Wrong"]}, ("Like", "Dislike", "Spam", "Wrong")),
        ({"flagging_mode": "manual", "flagging_options": ["Spam"]}, ("Like", "Dislike", "Spam")),
        ({"flagging_mode": "never"}, ("Like", "Dislike")),
    ],
)
def test_gradio_flagging_arguments_set_the_flag_menu(tmp_path, kwargs, menu):
    demo = FeedbackChatInterface(answer, data_dir=tmp_path, **kwargs)
    assert tuple(demo.chatbot.feedback_options) == menu
    assert demo.recorder.flag_reasons == menu[2:]


def test_a_bad_flagging_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="flagging_mode must be 'manual' or 'never'"):
        FeedbackChatInterface(answer, data_dir=tmp_path, flagging_mode="auto")


def test_recorder_loads_existing_conversations(tmp_path):
    store = FeedbackStore(tmp_path)
    recorder = FeedbackRecorder(store, flag_reasons=["Other"])
    assert len(recorder.index) == 0


def test_repeated_and_cleared_flag_picks_record_once_and_keep_the_rating(page):
    """What Gradio 6.31's page sends for a flag-menu pick (twice) and an un-pick (``liked=""``)."""
    session, data_dir = page
    session.send("one")
    session.like(1, True)
    session.like(1, "Harmful")
    session.like(1, "Harmful")  # the duplicate event of the same pick
    session.like(1, "")  # the reason un-picked: the report stands, the like is not undone
    session.like(1, True)
    session.like(1, "")  # the thumb un-clicked: an undo

    assert [f["reasons"] for f in read_records(data_dir, "flags")] == [["Harmful"]]
    assert [r["rating"] for r in read_records(data_dir, "ratings")] == ["like", "like", None]
