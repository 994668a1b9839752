"""The conversation index on disk (``feedback/index.py``): conversations go on by id after a
restart without re-reading the history, what other replicas wrote meanwhile is caught up, a torn
tail or a lost/corrupt index file are handled, and the index never leaves the machine."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AppProcess, hub_env, launch, read_records
from gradio_client import Client
from loguru import logger
from support.records import make_turn

from feedback.chat import responder_stream
from feedback.errors import FeedbackError
from feedback.hub.files import SYNC_PATTERNS
from feedback.index import INDEX_FILE, TurnIndex
from feedback.recorder import FeedbackRecorder
from feedback.responders import EchoResponder
from feedback.store import FeedbackStore
from feedback.web.api import ChatAPI
from schemas.records import Turn

REASONS = ("Inaccurate", "Other")


def open_recorder(data: Path, **kwargs) -> FeedbackRecorder:  # noqa: ANN003 - FeedbackRecorder's options
    """A recorder on ``data`` whose index has caught up."""
    recorder = FeedbackRecorder(FeedbackStore(data), flag_reasons=REASONS, **kwargs)
    assert recorder.index.wait_ready(60)
    return recorder


def stop(recorder: FeedbackRecorder) -> None:
    """What the app does on exit: close the shards, then the index."""
    recorder.store.close()
    recorder.close()


def api_of(recorder: FeedbackRecorder) -> ChatAPI:
    return ChatAPI(recorder, lambda _: responder_stream(EchoResponder()), "echo", {})


def chat(api: ChatAPI, text: str, conversation_id: str = "") -> dict:
    *_, last = api.chat({"text": text, "files": []}, conversation_id)
    return last


def timed_turn(cid: str, mid: str, index: int, text: str, second: int) -> Turn:
    return make_turn(cid, mid, index=index, text=text, timestamp=f"2026-01-01T00:00:{second:02d}Z")


def replica_shard(data: Path, turns: list[Turn], name: str = "20270101T000000000000Z-otherreplica-0001.jsonl") -> Path:
    """A shard another replica wrote (e.g. pulled in while this app was down)."""
    path = data / "turns" / name
    with open(path, "a") as handle:
        for turn in turns:
            handle.write(turn.model_dump_json() + "\n")
    return path


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        yield lines
    finally:
        logger.remove(sink)


def indexed_turns(data: Path) -> int:
    with sqlite3.connect(data / INDEX_FILE) as db:
        return db.execute("SELECT COUNT(*) FROM turns").fetchone()[0]


# -- restarts --------------------------------------------------------------------------------


def test_a_restart_continues_conversations_by_id_through_the_api_and_still_checks_replies(tmp_path):
    from gradio_client.exceptions import AppError

    from feedback.app import build_app
    from schemas.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    demo = build_app(settings)
    try:
        client = Client(launch(demo), verbose=False)
        first = client.predict({"text": "before restart", "files": []}, "", api_name="/chat")
        other = client.predict({"text": "another conversation", "files": []}, "", api_name="/chat")
    finally:
        demo.close()
        demo.recorder.close()
    assert (settings.data_dir / INDEX_FILE).is_file()

    demo = build_app(settings)
    try:
        assert demo.recorder.index.wait_ready(60)
        client = Client(launch(demo), verbose=False)
        second = client.predict({"text": "after restart", "files": []}, first["conversation_id"], api_name="/chat")
        client.predict(first["conversation_id"], first["message_id"], "like", api_name="/rate")
        with pytest.raises(AppError, match="is not a reply in conversation"):
            client.predict(first["conversation_id"], other["message_id"], "like", api_name="/rate")
        with pytest.raises(AppError, match="is not a reply in conversation"):
            client.predict(other["conversation_id"], first["message_id"], ["Other"], "", api_name="/flag")
    finally:
        demo.close()
        demo.recorder.close()
    turns = read_records(settings.data_dir, "turns")
    assert second["turn_index"] == 1
    assert [m["content"] for m in turns[-1]["messages"]] == ["before restart", first["response"], "after restart"]
    assert len(read_records(settings.data_dir, "ratings")) == 1 and not read_records(settings.data_dir, "flags")


def test_a_restart_reads_no_shard_again_and_keeps_retries_and_edits(tmp_path):
    data = tmp_path / "data"
    recorder = open_recorder(data)
    for turn in (
        timed_turn("conv-0001", "reply-00a", 0, "hi", 1),
        timed_turn("conv-0001", "reply-00b", 1, "more", 2),
        timed_turn("conv-0001", "reply-00c", 1, "more", 3),  # a retry of reply-b
        timed_turn("conv-0001", "reply-00d", 2, "and", 4),
        timed_turn("conv-0001", "reply-00e", 1, "edited", 5),  # an edit of the second message: reply-d drops out
    ):
        recorder.record_turn(turn)
    before = recorder.path("conv-0001")
    stop(recorder)

    assert TurnIndex(FeedbackStore(data)).catch_up() == 0  # every byte was indexed as it was written
    recorder = open_recorder(data)
    assert recorder.path("conv-0001") == before
    assert [(ref.message_id, ref.turn_index, ref.user.content) for ref in before] == [
        ("reply-00a", 0, "hi"),
        ("reply-00e", 1, "edited"),
    ]
    assert recorder.owner("reply-00d") == "conv-0001"  # an old branch can still be rated
    recorder.rate("conv-0001", "reply-00d", "dislike")
    stop(recorder)


def test_a_rating_of_a_reply_of_another_conversation_is_refused_after_a_restart(tmp_path):
    data = tmp_path / "data"
    recorder = open_recorder(data)
    api = api_of(recorder)
    mine, theirs = chat(api, "mine"), chat(api, "theirs")
    stop(recorder)

    recorder = FeedbackRecorder(FeedbackStore(data), flag_reasons=REASONS)  # lookups wait for the catch-up
    with pytest.raises(FeedbackError, match="is not a reply in conversation"):
        recorder.rate(mine["conversation_id"], theirs["message_id"], "like")
    with pytest.raises(FeedbackError, match="is not a reply in conversation"):
        recorder.flag(theirs["conversation_id"], mine["message_id"], ["Other"])
    recorder.rate(mine["conversation_id"], mine["message_id"], "like")
    stop(recorder)
    assert len(read_records(data, "ratings")) == 1 and not read_records(data, "flags")


# -- catching up -----------------------------------------------------------------------------


def test_another_replicas_shard_appended_while_down_is_caught_up(tmp_path):
    data = tmp_path / "data"
    recorder = open_recorder(data)
    first = chat(api_of(recorder), "started here")
    stop(recorder)
    cid = first["conversation_id"]
    late = timed_turn(cid, "replica-reply-1", 1, "went on elsewhere", 59)
    late = late.model_copy(update={"timestamp": late.timestamp.replace(year=2100)})  # after the first turn
    replica_shard(data, [late, timed_turn("replica-conversation", "replica-reply-2", 0, "a new one there", 59)])

    assert TurnIndex(FeedbackStore(data)).catch_up() == 2  # only the new shard is read
    recorder = open_recorder(data)
    assert [ref.message_id for ref in recorder.path(cid)] == [first["message_id"], late.message_id]
    assert recorder.owner("replica-reply-2") == "replica-conversation"
    recorder.check_reply("replica-conversation", "replica-reply-2")
    third = chat(api_of(recorder), "back here", cid)
    assert third["turn_index"] == 2
    (written,) = [t for t in read_records(data, "turns") if t["message_id"] == third["message_id"]]
    assert [m["content"] for m in written["messages"]] == [
        "started here",
        first["response"],
        "went on elsewhere",
        late.response,
        "back here",
    ]
    stop(recorder)


def test_a_torn_tail_is_skipped_then_indexed_once_complete(tmp_path, warnings):
    data = tmp_path / "data"
    (data / "turns").mkdir(parents=True)
    whole = timed_turn("torn-conversation", "torn-reply", 1, "finished later", 3)
    shard = replica_shard(data, [timed_turn("torn-conversation", "first-reply", 0, "hello", 1)])
    line = whole.model_dump_json().encode() + b"\n"
    with open(shard, "ab") as handle:
        handle.write(line[:40])  # a crash (or a writer on a shared disk) mid-line

    index = TurnIndex(FeedbackStore(data))
    assert index.catch_up() == 1
    assert any("torn last line" in w for w in warnings)
    assert [ref.message_id for ref in index.path("torn-conversation")] == ["first-reply"]
    with sqlite3.connect(data / INDEX_FILE) as db:
        (indexed,) = db.execute("SELECT indexed_bytes FROM shards").fetchone()
    assert indexed == shard.stat().st_size - 40  # up to the last complete line
    index.close()

    with open(shard, "ab") as handle:
        handle.write(line[40:])
    index = TurnIndex(FeedbackStore(data))
    assert index.catch_up() == 1  # only the now-complete line
    assert [ref.message_id for ref in index.path("torn-conversation")] == ["first-reply", "torn-reply"]
    index.close()


def test_bad_lines_are_skipped_with_a_warning_and_not_read_again(tmp_path, warnings):
    data = tmp_path / "data"
    (data / "turns").mkdir(parents=True)
    shard = replica_shard(data, [timed_turn("conversation-1", "good-reply-1", 0, "a", 1)])
    with open(shard, "a") as handle:
        handle.write("not json\n" + json.dumps({"conversation_id": "conversation-1", "turn_index": -1}) + "\n")
    replica_shard(data, [timed_turn("conversation-1", "good-reply-2", 1, "b", 2)], name=shard.name)

    index = TurnIndex(FeedbackStore(data))
    assert index.catch_up() == 2
    assert sum("not a valid turn" in w for w in warnings) == 2
    assert [ref.message_id for ref in index.path("conversation-1")] == ["good-reply-1", "good-reply-2"]
    assert index.catch_up() == 0
    index.close()


def test_lookups_wait_for_the_catch_up_but_new_conversations_do_not(tmp_path):
    data = tmp_path / "data"
    (data / "turns").mkdir(parents=True)
    replica_shard(data, [timed_turn("old-conversation", "old-reply", 0, "old", 1)])
    release = threading.Event()

    class SlowIndex(TurnIndex):
        def _catch_up(self, generation: int) -> int:
            release.wait(30)
            return super()._catch_up(generation)

    store = FeedbackStore(data)
    index = SlowIndex(store)
    index.start_catch_up()
    recorder = FeedbackRecorder(store, flag_reasons=REASONS, index=index)
    api = api_of(recorder)
    new = chat(api, "a new conversation does not wait")  # the catch-up has not even started reading
    assert new["turn_index"] == 0 and not index.ready
    recorder.rate(new["conversation_id"], new["message_id"], "like")  # a reply written here is known at once

    answers: list[dict] = []
    waiting = threading.Thread(target=lambda: answers.append(chat(api, "go on", "old-conversation")))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and not answers  # an old conversation waits for the catch-up...
    release.set()
    waiting.join(30)
    assert answers[0]["turn_index"] == 1  # ...and then goes on where it was
    stop(recorder)


def test_a_recorder_that_only_writes_never_reads_the_shards(tmp_path):
    data = tmp_path / "data"
    (data / "turns").mkdir(parents=True)
    replica_shard(data, [timed_turn("old-conversation", "old-reply", 0, "old", 1)])
    recorder = FeedbackRecorder(FeedbackStore(data), flag_reasons=REASONS)  # e.g. the review desk's
    recorder.record_turn(timed_turn("new-conversation", "new-reply", 0, "new", 2))
    assert not recorder.index.ready  # no catch-up started: nothing asked for an old conversation
    assert recorder.owner("old-reply") == "old-conversation"  # the first lookup that needs it starts it
    assert recorder.index.ready
    stop(recorder)


# -- a lost or broken index ------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["deleted", "garbage", "other format"])
def test_a_deleted_or_corrupt_index_is_rebuilt_from_the_shards(tmp_path, warnings, damage):
    data = tmp_path / "data"
    recorder = open_recorder(data)
    api = api_of(recorder)
    first = chat(api, "one")
    chat(api, "two", first["conversation_id"])
    stop(recorder)
    index_files = [data / (INDEX_FILE + suffix) for suffix in ("", "-wal", "-shm")]
    if damage == "deleted":
        for path in index_files:
            path.unlink(missing_ok=True)
    elif damage == "garbage":
        (data / INDEX_FILE).write_bytes(b"this is not a database, " * 1000)
    else:
        with sqlite3.connect(data / INDEX_FILE) as db:
            db.execute("UPDATE meta SET value = '0' WHERE key = 'format'")

    recorder = open_recorder(data)
    if damage != "deleted":
        assert any("rebuilding it from the shards" in w for w in warnings)
    assert len(recorder.path(first["conversation_id"])) == 2
    assert chat(api_of(recorder), "three", first["conversation_id"])["turn_index"] == 2
    stop(recorder)
    assert indexed_turns(data) == 3


def test_turns_kept_out_by_the_write_gate_never_reach_the_index_file(tmp_path):
    data = tmp_path / "data"
    recorder = open_recorder(data, gate=[lambda record: None])
    api = api_of(recorder)
    first = chat(api, "do not keep this")
    assert chat(api, "nor this", first["conversation_id"])["turn_index"] == 1  # goes on in this process
    stop(recorder)
    assert indexed_turns(data) == 0
    assert b"do not keep this" not in b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())


def test_concurrent_chats_while_catching_up_all_land_in_order(tmp_path):
    data = tmp_path / "data"
    (data / "turns").mkdir(parents=True)
    replica_shard(data, [timed_turn(f"old-{n:05d}", f"old-reply-{n:05d}", 0, f"old {n}", 1) for n in range(3000)])
    recorder = FeedbackRecorder(FeedbackStore(data), flag_reasons=REASONS)
    api = api_of(recorder)
    errors: list[BaseException] = []

    def talk(n: int) -> None:
        try:
            cid = ""
            for i in range(10):
                reply = chat(api, f"thread {n} message {i}", cid)
                assert reply["turn_index"] == i
                cid = reply["conversation_id"]
                recorder.rate(cid, reply["message_id"], "like")
            assert chat(api, "and an old one", f"old-{n:05d}")["turn_index"] == 1
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=talk, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    stop(recorder)
    assert indexed_turns(data) == 3000 + 8 * 11
    assert TurnIndex(FeedbackStore(data)).catch_up() == 0


# -- never synced ----------------------------------------------------------------------------


def test_the_index_matches_none_of_the_sync_patterns(tmp_path):
    data = tmp_path / "data"
    recorder = open_recorder(data)
    chat(api_of(recorder), "hello")
    synced = {path for pattern in SYNC_PATTERNS for path in data.glob(pattern)}
    assert (data / INDEX_FILE).is_file() and (data / (INDEX_FILE + "-wal")).is_file()
    assert not any(INDEX_FILE in path.name for path in synced)
    stop(recorder)


def test_a_push_to_the_hub_does_not_contain_the_index(hub, tmp_path):
    repo_id = "test-user/index-not-synced"
    env = {
        **hub_env(hub, tmp_path),
        "FEEDBACK_DATA_DIR": str(tmp_path / "data"),
        "FEEDBACK_DATASET_REPO": repo_id,
        "FEEDBACK_SYNC_EVERY": "0.005",
    }
    app = AppProcess(env, tmp_path / "app.log").wait_ready()
    try:
        client = Client(app.url, verbose=False)
        for n in range(3):
            client.predict({"text": f"message {n}", "files": []}, "", api_name="/chat")
        assert (tmp_path / "data" / INDEX_FILE).is_file()  # there while the app pushes
        assert app.terminate() == 0, app.log()
    finally:
        app.kill()
    files = hub.files(repo_id)
    assert any(path.startswith("turns/") for path in files), sorted(files)
    assert not [path for path in files if "conversations" in path or "sqlite" in path], sorted(files)
