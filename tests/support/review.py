"""A small review log (three conversations, five replies, three flagged on different days), a review desk
on it, and the fixture serving the whole app on it (chat at ``/``, reviewer page at ``/review``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port

from feedback.recorder import FeedbackRecorder
from feedback.review import ReviewDesk
from feedback.store import FeedbackStore
from schemas.records import Flag, Rating, Turn
from schemas.settings import Settings
from support.records import make_turn


def turn(cid: str, mid: str, index: int, text: str, model: str = "m1", day: int = 1) -> Turn:
    """A turn of a review log: ``index`` earlier user messages ``q0``, ``q1``, ... then ``text``."""
    return make_turn(
        cid,
        mid,
        index=index,
        text=text,
        history=[f"q{i}" for i in range(index)],
        response=f"re {text}",
        model=model,
        timestamp=f"2026-03-{day:02d}T10:00:00Z",
    )


def desk_on(store: FeedbackStore, reviewers: list[str] | None = None) -> ReviewDesk:
    """A review desk writing through a recorder on ``store``."""
    return ReviewDesk(FeedbackRecorder(store, flag_reasons=("Inaccurate", "Harmful")), reviewers=reviewers or ())


def seed(data_dir: Path) -> FeedbackStore:
    """Three conversations, two models, five replies; three of them flagged on different days."""
    store = FeedbackStore(data_dir)
    records = [
        turn("conv-aaaa", "msg-a0000", 0, "hello", day=1),
        turn("conv-aaaa", "msg-a1111", 1, "tell me more", day=1),
        turn("conv-bbbb", "msg-b0000", 0, "bonjour", model="m2", day=2),
        turn("conv-cccc", "msg-c0000", 0, "hola", day=3),
        turn("conv-cccc", "msg-c1111", 1, "again", day=3),
        Rating(conversation_id="conv-aaaa", message_id="msg-a1111", rating="like", timestamp="2026-03-01T11:00:00Z"),
        Rating(
            conversation_id="conv-aaaa",
            message_id="msg-a1111",
            rating="dislike",
            comment="actually wrong",
            timestamp="2026-03-01T11:05:00Z",
        ),
        Rating(conversation_id="conv-bbbb", message_id="msg-b0000", rating="like", timestamp="2026-03-02T11:00:00Z"),
        Rating(conversation_id="conv-cccc", message_id="msg-c1111", rating="like", timestamp="2026-03-03T11:00:00Z"),
        Flag(
            conversation_id="conv-aaaa",
            message_id="msg-a1111",
            reasons=["Inaccurate"],
            comment="bad date",
            timestamp="2026-03-01T12:00:00Z",
        ),
        Flag(
            conversation_id="conv-aaaa",
            message_id="msg-a1111",
            reasons=["Inaccurate", "Harmful"],
            timestamp="2026-03-01T13:00:00Z",
        ),
        Flag(
            conversation_id="conv-bbbb", message_id="msg-b0000", reasons=["Off-topic"], timestamp="2026-03-02T12:00:00Z"
        ),
        Flag(
            conversation_id="conv-cccc",
            message_id="msg-c0000",
            reasons=["Other"],
            comment="odd",
            timestamp="2026-03-03T12:00:00Z",
        ),
    ]
    for record in records:
        store.append(record)
    return store


@pytest.fixture(scope="class")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("review") / "data"


@pytest.fixture(scope="class")
def served(data_dir) -> Iterator[str]:
    """The whole app (chat at /, reviewer page at /review) on a uvicorn server in a thread, shared
    by the tests of a class (they run in order: anonymous, non-reviewer, reviewer)."""
    import uvicorn

    from feedback.app import create_app
    from feedback.web.server import Server

    seed(data_dir)
    settings = Settings(data_dir=data_dir, reviewers=["ann"], review_auth="ann:pw-ann,eve:pw-eve")
    port = free_port()
    server = Server(uvicorn.Config(create_app(settings).server(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("server did not start")
            threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.handle_exit(signal.SIGTERM, None)  # as on SIGTERM: ends heartbeat streams, then shuts down
        thread.join(30)
