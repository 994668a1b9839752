"""``FeedbackChatInterface`` as a drop-in ``gr.ChatInterface``, and page events recorded as meant.

In process (the page's events through ``/gradio_api/run``, see ``test_page.PageSession``) and with
``gradio_client`` against a launched user app; the browser cases are in ``test_browser_drop_in.py``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import gradio as gr
import pytest
from conftest import launch, read_records
from fastapi.testclient import TestClient
from gradio_client import Client
from openai_server import OpenAICompatServer
from support.page import PageSession

from feedback import FeedbackChatInterface
from feedback.app import build_app
from feedback.chat import PendingTurn
from schemas.records import ChatMessage
from schemas.settings import Settings


def styled(message: dict | str, history: list, temperature: float, style: str) -> str:
    """A chat function with two additional inputs, as a library user writes one."""
    text = message["text"] if isinstance(message, dict) else message
    return f"{style} reply to {text} at {temperature}"


def user_app(data_dir: Path, **kwargs: object) -> FeedbackChatInterface:
    return FeedbackChatInterface(
        styled,
        data_dir=data_dir,
        additional_inputs=[
            gr.Slider(0, 2, value=0.7, label="Temperature"),
            gr.Dropdown(["short", "long"], value="short", label="Style"),
        ],
        **kwargs,
    )


# -- additional inputs: named API parameters, recorded by label -------------------------------


def test_chat_api_takes_the_apps_additional_inputs_by_name_and_records_them(tmp_path):
    demo = user_app(tmp_path / "data")
    try:
        client = Client(launch(demo), verbose=False)
        reply = client.predict("hi", "", temperature=1.3, style="long", api_name="/chat")
        default = client.predict("again", reply["conversation_id"], api_name="/chat")
        with pytest.raises(Exception, match="temperature must be between 0 and 2"):
            client.predict("hot", "", temperature=5, api_name="/chat")
        with pytest.raises(Exception, match="style must be one of"):
            client.predict("odd", "", style="medium", api_name="/chat")
        info = client.view_api(print_info=False, return_format="dict")
    finally:
        demo.close()
    assert reply["response"] == "long reply to hi at 1.3" and default["response"] == "short reply to again at 0.7"
    first, second = read_records(tmp_path / "data", "turns")
    assert first["params"]["temperature"] == 1.3
    assert first["params"]["inputs"] == [{"name": "Temperature", "value": "1.3"}, {"name": "Style", "value": '"long"'}]
    assert [json.loads(i["value"]) for i in second["params"]["inputs"]] == [0.7, "short"]
    chat = info["named_endpoints"]["/chat"]["parameters"]
    # the app's inputs right after the endpoint's own first parameters; consent (added later) last
    assert [p["parameter_name"] for p in chat] == ["message", "conversation_id", "temperature", "style", "consent"]
    assert sorted(info["named_endpoints"]) == ["/chat", "/feedback_options", "/flag", "/forget", "/rate", "/regenerate"]


def test_the_page_records_additional_inputs_by_label(tmp_path):
    demo = user_app(tmp_path / "data", multimodal=True)
    session = PageSession(TestClient(gr.routes.App.create_app(demo)), "browser-1")
    slider = next(b for b in session.blocks.blocks.values() if isinstance(b, gr.Slider))
    dropdown = next(b for b in session.blocks.blocks.values() if isinstance(b, gr.Dropdown))
    session.values[slider._id], session.values[dropdown._id] = 1.1, "short"  # what the browser sends
    session.send("hello")
    (turn,) = read_records(tmp_path / "data", "turns")
    assert turn["response"] == "short reply to hello at 1.1"
    assert turn["params"]["temperature"] == 1.1 and turn["params"]["inputs"][1] == {"name": "Style", "value": '"short"'}


def test_the_system_prompt_is_the_first_logged_message(tmp_path):
    with OpenAICompatServer(model="tiny-chat") as server:
        settings = Settings(
            data_dir=tmp_path / "data",
            responder="openai",
            model="tiny-chat",
            base_url=server.base_url,
            system_prompt="You are terse.",
        )
        demo = build_app(settings)
        try:
            client = Client(launch(demo), verbose=False)
            reply = client.predict("hello", "", api_name="/chat")
            client.predict("more", reply["conversation_id"], api_name="/chat")
        finally:
            demo.close()
        sent = server.requests[-1]["messages"]
    turns = read_records(tmp_path / "data", "turns")
    for turn in turns:
        assert turn["messages"][0] == {"role": "system", "content": "You are terse.", "files": []}
    assert [m["role"] for m in turns[1]["messages"]] == ["system", "user", "assistant", "user"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]  # sent once, not twice


# -- clicks while a reply streams ------------------------------------------------------------


def test_a_rating_made_while_the_reply_streams_is_written_after_its_turn(tmp_path):
    release = threading.Event()

    def slow(message: str, history: list):  # noqa: ANN202 - a streaming chat function
        yield "part"
        release.wait(30)
        yield "partial and whole"

    demo = FeedbackChatInterface(slow, data_dir=tmp_path / "data")
    recorder = demo.recorder
    user = [ChatMessage(role="user", content="hi")]
    pending = PendingTurn(recorder, demo._stream([], []), "conversation-1", user, 0, "slow")  # as the page runs it
    replies = iter(pending)
    assert next(replies) == "part"
    rating = recorder.rate("conversation-1", pending.message_id, "like", comment="good so far")
    assert rating.rating == "like" and not read_records(tmp_path / "data", "ratings")  # kept, not yet written
    release.set()
    assert list(replies) == ["partial and whole"]
    (turn,) = read_records(tmp_path / "data", "turns")
    (stored,) = read_records(tmp_path / "data", "ratings")
    assert stored["message_id"] == turn["message_id"] and stored["comment"] == "good so far"
    recorder.rate("conversation-1", pending.message_id, None)  # an undo of a rating that exists
    assert [r["rating"] for r in read_records(tmp_path / "data", "ratings")] == ["like", None]


def test_clicks_on_a_reply_that_fails_are_dropped_with_the_reply(tmp_path):
    def broken(message: str, history: list):  # noqa: ANN202
        yield "so far"
        raise RuntimeError("model went away")

    demo = FeedbackChatInterface(broken, data_dir=tmp_path / "data")
    pending = PendingTurn(
        demo.recorder, demo._stream([], []), "conversation-2", [ChatMessage(role="user", content="x")], 0, "m"
    )
    replies = iter(pending)
    next(replies)
    demo.recorder.rate("conversation-2", pending.message_id, "dislike")
    with pytest.raises(RuntimeError):
        list(replies)
    assert not read_records(tmp_path / "data", "turns") and not read_records(tmp_path / "data", "ratings")
    with pytest.raises(Exception, match="not a reply"):
        demo.recorder.rate("conversation-2", pending.message_id, "like")


# -- the comment box and repeated events --------------------------------------------------------


def test_the_repeat_of_a_flag_pick_leaves_the_comment_box_alone(tmp_path):
    demo = FeedbackChatInterface(styled_plain, data_dir=tmp_path / "data")
    session = PageSession(TestClient(gr.routes.App.create_app(demo)), "browser-1")
    session.send("one")
    session.send("two")
    like = next(fn for fn in session.blocks.fns.values() if fn.name == "on_like")
    comment_box = next(b for b in session.blocks.blocks.values() if getattr(b, "label", None) == "Comment")

    def click(index: int, liked: object, comment: str) -> object:
        event = {"index": index, "value": session.chat[index]["content"], "liked": liked}
        session.values[comment_box._id] = comment
        return session.run(like.api_name, [session.chat, None, comment], event)[0]

    assert click(1, "Harmful", "wrong year") == ""  # the comment went with the flag: the box is emptied
    repeat = click(1, "Harmful", "wrong year")  # Gradio's second event for the same pick, stale comment
    assert isinstance(repeat, dict) and repeat.get("__type__") == "update" and "value" not in repeat
    assert click(3, True, "") == ""
    (flag,) = read_records(tmp_path / "data", "flags")
    (rating,) = read_records(tmp_path / "data", "ratings")
    assert flag["comment"] == "wrong year" and rating["comment"] is None


def styled_plain(message: str, history: list) -> str:
    return f"reply to {message}"


def multimodal_plain(message: dict, history: list) -> str:
    return f"reply to {message['text']}"


# -- save_history: each chat its own conversation ---------------------------------------------


def test_new_chat_and_a_reopened_chat_keep_their_own_conversations(tmp_path):
    demo = FeedbackChatInterface(multimodal_plain, data_dir=tmp_path / "data", save_history=True, multimodal=True)
    session = PageSession(TestClient(gr.routes.App.create_app(demo)), "browser-1")
    session.textbox = demo.textbox  # the history panel has a textbox of its own
    session.send("first chat")
    chat_a = list(session.chat)
    session.chat = []
    session.fire(demo.new_chat_button, "click")  # "New chat"
    session.send("second chat")
    session.like(1, False)
    # back to the first chat from the history panel: the panel gives its index in the saved chats
    session.values[demo.chat_history_dataset._id] = 1
    session.values[demo.saved_conversations._id] = [session.chat, chat_a]
    session.fire(demo.chat_history_dataset, "click")
    session.chat = chat_a
    session.like(1, True)
    session.send("first chat, go on")

    turns = read_records(tmp_path / "data", "turns")
    a, b, a2 = turns
    assert a["conversation_id"] != b["conversation_id"]
    assert b["turn_index"] == 0 and b["edited_from"] is None  # not an edit of the other chat
    assert a2["conversation_id"] == a["conversation_id"] and a2["turn_index"] == 1
    ratings = read_records(tmp_path / "data", "ratings")
    assert [(r["message_id"], r["conversation_id"], r["rating"]) for r in ratings] == [
        (b["message_id"], b["conversation_id"], "dislike"),
        (a["message_id"], a["conversation_id"], "like"),
    ]
