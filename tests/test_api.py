"""The API for custom front ends, through the real app on 127.0.0.1 and ``gradio_client``."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import count_records, launch, read_records
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from feedback.responders.echo import EchoResponder


def chat(client: Client, text: str, conversation_id: str = "") -> dict:
    return client.predict({"text": text, "files": []}, conversation_id, api_name="/chat")


def echo_reply(history: list[str], regenerate: bool = False) -> str:
    messages = []
    for i, text in enumerate(history):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return EchoResponder().reply(messages, regenerate=regenerate)


class TestConversation:
    def test_three_turns_share_a_conversation(self, client, running_app):
        first = chat(client, "one")
        second = chat(client, "two", first["conversation_id"])
        third = chat(client, "three", first["conversation_id"])

        turns = running_app.records("turns")
        assert [t["turn_index"] for t in turns] == [0, 1, 2]
        assert {t["conversation_id"] for t in turns} == {first["conversation_id"]}
        assert [t["message_id"] for t in turns] == [first["message_id"], second["message_id"], third["message_id"]]
        assert third["done"] is True and third["response"] == turns[2]["response"]
        prompt = [(m["role"], m["content"]) for m in turns[2]["messages"]]
        assert prompt == [
            ("user", "one"),
            ("assistant", first["response"]),
            ("user", "two"),
            ("assistant", second["response"]),
            ("user", "three"),
        ]
        assert turns[2]["response"] == echo_reply(["one", first["response"], "two", second["response"], "three"])
        assert all(t["source"] == "api" and t["model"] == "echo" and t["latency_ms"] >= 0 for t in turns)

    def test_clients_get_their_own_conversation(self, running_app):
        a, b = Client(running_app.url, verbose=False), Client(running_app.url, verbose=False)
        first, second = chat(a, "hi"), chat(b, "hi")
        assert first["conversation_id"] != second["conversation_id"]
        assert first["message_id"] != second["message_id"]

    def test_client_chosen_id_starts_then_continues(self, client, running_app):
        mine = "widget-session_0001"
        first = chat(client, "hello", mine)
        second = chat(client, "again", mine)
        assert first["conversation_id"] == second["conversation_id"] == mine
        assert second["turn_index"] == 1

    def test_streaming_yields_growing_reply_with_its_message_id(self, client):
        job = client.submit({"text": "stream this please", "files": []}, "", api_name="/chat")
        items = list(job)
        assert len(items) >= 3
        assert len({i["message_id"] for i in items}) == 1
        assert items[-1]["done"] and not items[0]["done"]
        assert all(items[i]["response"].startswith(items[i - 1]["response"]) for i in range(1, len(items) - 1))

    def test_regenerate_logs_a_new_reply_to_the_same_prompt(self, client, running_app):
        first = chat(client, "one")
        second = chat(client, "two", first["conversation_id"])
        again = client.predict(first["conversation_id"], second["message_id"], api_name="/regenerate")

        assert again["message_id"] != second["message_id"] and again["turn_index"] == 1
        turns = {t["message_id"]: t for t in running_app.records("turns")}
        new, old = turns[again["message_id"]], turns[second["message_id"]]
        assert new["regenerated_from"] == second["message_id"]
        assert new["messages"] == old["messages"]
        assert new["response"] == again["response"] != old["response"]
        # the conversation continues from the regenerated reply
        third = chat(client, "three", first["conversation_id"])
        prompt = running_app.records("turns")[-1]["messages"]
        assert third["turn_index"] == 2 and prompt[3]["content"] == again["response"]

    def test_files_are_stored_content_addressed(self, client, running_app, tmp_path):
        upload = tmp_path / "Notes.TXT"
        upload.write_text("some notes")
        reply = client.predict({"text": "see file", "files": [handle_file(str(upload))]}, "", api_name="/chat")
        turn = running_app.records("turns")[0]
        (stored,) = turn["messages"][-1]["files"]
        assert stored.startswith("files/") and stored.endswith(".txt")
        assert (running_app.data_dir / stored).read_text() == "some notes"
        assert "see file" in reply["response"]


class TestRatingsAndFlags:
    def test_like_dislike_undo_option_comment(self, client, running_app):
        reply = chat(client, "rate me")
        cid, mid = reply["conversation_id"], reply["message_id"]
        client.predict(cid, mid, "like", api_name="/rate")
        client.predict(cid, mid, "dislike", "Inaccurate", "wrong year", api_name="/rate")
        stored = client.predict(cid, mid, "", api_name="/rate")

        ratings = running_app.records("ratings")
        assert [(r["rating"], r["option"], r["comment"]) for r in ratings] == [
            ("like", None, None),
            ("dislike", "Inaccurate", "wrong year"),
            (None, None, None),
        ]
        assert stored == ratings[-1]
        assert all(r["message_id"] == mid and r["conversation_id"] == cid and r["source"] == "api" for r in ratings)

    def test_flag_with_two_reasons(self, client, running_app):
        reply = chat(client, "flag me")
        stored = client.predict(
            reply["conversation_id"], reply["message_id"], ["Harmful", "Off-topic"], "not ok", api_name="/flag"
        )
        (flag,) = running_app.records("flags")
        assert flag == stored
        assert flag["reasons"] == ["Harmful", "Off-topic"] and flag["comment"] == "not ok"
        assert flag["schema_version"] == 1 and flag["timestamp"].endswith("Z")

    def test_feedback_options_lists_what_may_be_sent(self, client):
        options = client.predict(api_name="/feedback_options")
        assert options["ratings"] == ["like", "dislike"]
        assert options["reasons"] == ["Inaccurate", "Harmful", "Off-topic", "Other"]


REFUSALS = {
    "malformed conversation id": ("/chat", lambda ids: ({"text": "hi", "files": []}, "bad id!"), "malformed"),
    "short conversation id": ("/chat", lambda ids: ({"text": "hi", "files": []}, "abc"), "malformed"),
    "too long message": ("/chat", lambda ids: ({"text": "x" * 100_001, "files": []}, ""), "limit is 100,000"),
    "unknown message key": ("/chat", lambda ids: ({"txt": "hi"}, ""), "unknown keys"),
    "file not uploaded": (
        "/chat",
        lambda ids: ({"text": "hi", "files": [{"path": "/etc/passwd"}]}, ""),
        "not uploaded",
    ),
    "rating value": ("/rate", lambda ids: (ids["cid"], ids["mid"], "love"), "is not 'like'"),
    "reply of another conversation": ("/rate", lambda ids: (ids["other_cid"], ids["mid"], "like"), "not a reply"),
    "unknown message id": ("/rate", lambda ids: (ids["cid"], "0" * 32, "like"), "not a reply"),
    "malformed message id": ("/rate", lambda ids: (ids["cid"], "../../etc", "like"), "malformed"),
    "unknown option": ("/rate", lambda ids: (ids["cid"], ids["mid"], "like", "Boring"), "not one of"),
    "no flag reason": ("/flag", lambda ids: (ids["cid"], ids["mid"], []), "at least one reason"),
    "unknown flag reason": ("/flag", lambda ids: (ids["cid"], ids["mid"], ["Spam"]), "not among"),
    "flag other conversation": ("/flag", lambda ids: (ids["other_cid"], ids["mid"], ["Other"]), "not a reply"),
    "regenerate not last": ("/regenerate", lambda ids: (ids["cid"], ids["first_mid"]), "not the last reply"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_refusals_write_nothing_and_the_app_keeps_serving(client, running_app, case):
    endpoint, make_args, message = REFUSALS[case]
    first = chat(client, "first")
    second = chat(client, "second", first["conversation_id"])
    other = chat(client, "elsewhere")
    ids = {
        "cid": first["conversation_id"],
        "mid": second["message_id"],
        "first_mid": first["message_id"],
        "other_cid": other["conversation_id"],
    }
    before = count_records(running_app.data_dir)

    with pytest.raises(AppError, match=message):
        client.predict(*make_args(ids), api_name=endpoint)

    assert count_records(running_app.data_dir) == before
    assert chat(client, "still there?", ids["cid"])["turn_index"] == 2


def test_conversation_continues_after_restart(tmp_path):
    from feedback.app import build_app
    from schemas.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    demo = build_app(settings)
    try:
        first = chat(Client(launch(demo), verbose=False), "before restart")
    finally:
        demo.close()

    demo = build_app(settings)
    try:
        client = Client(launch(demo), verbose=False)
        second = chat(client, "after restart", first["conversation_id"])
        client.predict(first["conversation_id"], first["message_id"], "like", api_name="/rate")
    finally:
        demo.close()
    turns = read_records(Path(settings.data_dir), "turns")
    assert second["turn_index"] == 1
    assert [m["content"] for m in turns[1]["messages"]] == ["before restart", first["response"], "after restart"]
    assert len(list((settings.data_dir / "turns").glob("*.jsonl"))) == 2  # each process writes its own shard
