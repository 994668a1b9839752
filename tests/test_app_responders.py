"""The app with each responder, end to end: page settings -> responder -> recorded turns."""

from __future__ import annotations

import pytest
from conftest import launch, read_records
from gradio_client import Client
from gradio_client.exceptions import AppError
from openai_server import OpenAICompatServer

from feedback.app import build_app
from schemas.settings import Settings


@pytest.fixture
def openai_server():
    server = OpenAICompatServer(model="tiny-chat")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_openai_responder_streams_and_records_model_and_params(tmp_path, openai_server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_app_secret")
    settings = Settings(
        data_dir=tmp_path / "data",
        responder="openai",
        model="tiny-chat",
        base_url=openai_server.base_url,
        temperature=0.3,
        max_tokens=64,
    )
    demo = build_app(settings)
    try:
        client = Client(launch(demo), verbose=False)
        items = list(client.submit({"text": "hello model", "files": []}, "", api_name="/chat"))
        second = client.predict({"text": "and again", "files": []}, items[-1]["conversation_id"], api_name="/chat")
        openai_server.fail_next(500)
        with pytest.raises(AppError, match="could not answer"):
            client.predict({"text": "fail", "files": []}, items[-1]["conversation_id"], api_name="/chat")
        third = client.predict({"text": "recovered", "files": []}, items[-1]["conversation_id"], api_name="/chat")
    finally:
        demo.close()

    assert items[-1]["response"] == "You said: hello model" and len(items) > 3
    turns = read_records(tmp_path / "data", "turns")
    assert len(turns) == 3  # the failed request wrote nothing
    assert turns[0]["model"] == "tiny-chat"
    assert turns[0]["params"] == {"temperature": 0.3, "top_p": None, "max_tokens": 64, "seed": None, "inputs": []}
    assert third["turn_index"] == 2 and second["response"] == "You said: and again"
    body = openai_server.requests[1]
    assert body["model"] == "tiny-chat" and body["stream"] is True
    assert [m["content"] for m in body["messages"]] == ["hello model", "You said: hello model", "and again"]
    assert openai_server.auth_headers[0] == "Bearer hf_app_secret"
    for path in (tmp_path / "data").rglob("*.jsonl"):
        assert "hf_app_secret" not in path.read_text()


def test_echo_is_the_default_and_needs_nothing(tmp_path, monkeypatch):
    for name in ("FEEDBACK_RESPONDER", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FEEDBACK_DATA_DIR", str(tmp_path / "data"))
    demo = build_app(Settings())
    try:
        reply = Client(launch(demo), verbose=False).predict("ping", "", api_name="/chat")
    finally:
        demo.close()
    assert reply["response"] == "You said: ping [turn 1]"
    assert read_records(tmp_path / "data", "turns")[0]["model"] == "echo"
