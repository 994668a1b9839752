"""Idle page sessions expire (``FEEDBACK_SESSION_TTL``): Gradio's per-session copy of the page and
our :class:`ChatSession` are freed; a user who comes back to an expired page starts a new
conversation (Gradio's ``ChatInterface`` keeps the chat history in the session too)."""

from __future__ import annotations

import datetime
import gc
import weakref

import gradio as gr
import pytest
from browser import wait_until
from conftest import read_records
from fastapi.testclient import TestClient
from pydantic import ValidationError
from support.page import PageSession, answer

from feedback import FeedbackChatInterface
from feedback.web.sessions import expire_idle_sessions
from schemas.settings import Settings


def test_an_idle_session_expires_and_frees_its_memory_and_the_page_still_works(tmp_path):
    data = tmp_path / "data"
    demo = FeedbackChatInterface(answer, data_dir=data, multimodal=True, model="test-fn", session_ttl=0.5)
    with TestClient(gr.routes.App.create_app(demo)) as http:
        assert http.get("/gradio_api/startup-events").status_code == 200  # what launch() calls: starts the expiry
        page = PageSession(http, "browser-1")
        page.send("hello")
        holder = demo.state_holder
        chat_session = holder.session_data["browser-1"].state_data[demo.session._id]
        freed = weakref.ref(chat_session)
        gradio_session = weakref.ref(holder.session_data["browser-1"])
        del chat_session

        wait_until(lambda: "browser-1" not in holder.session_data, what="the idle session to expire")
        gc.collect()
        assert freed() is None and gradio_session() is None
        assert "browser-1" not in holder.time_last_used

        page.send("I am back")
        assert "browser-1" in holder.session_data
    first, second = read_records(data, "turns")  # a new conversation: the history was the session's
    assert second["conversation_id"] != first["conversation_id"] and second["turn_index"] == 0
    assert [m["content"] for m in second["messages"]] == ["I am back"]
    demo.recorder.close()


def test_only_sessions_idle_past_the_ttl_expire(tmp_path):
    demo = FeedbackChatInterface(answer, model="test-fn", data_dir=tmp_path / "data", session_ttl=60)
    app = gr.routes.App.create_app(demo)
    holder = app.state_holder
    start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    for sid, used in (("idle", start), ("active", start + datetime.timedelta(seconds=100))):
        holder[sid]  # noqa: B018 - creates the session, as an event does
        holder.time_last_used[sid] = used
    assert expire_idle_sessions(holder, 60, now=start + datetime.timedelta(seconds=150)) == 1
    assert set(holder.session_data) == {"active"} and set(holder.time_last_used) == {"active"}
    demo.recorder.close()


def test_session_ttl_setting_has_bounds():
    assert Settings().session_ttl == 3600
    assert Settings(session_ttl=30).session_ttl == 30
    for bad in (0, 5, 8 * 86400, float("inf")):
        with pytest.raises(ValidationError, match="session_ttl"):
            Settings(session_ttl=bad)


def test_the_app_gives_its_page_the_configured_ttl(tmp_path):
    from feedback.app import create_app

    app = create_app(Settings(data_dir=tmp_path / "data", session_ttl=42))
    assert app.demo.session.time_to_live == 42
    assert app.demo.extra_startup_events  # the expiry starts with the server
    app.recorder.close()
