"""The store: concurrent appends, shard rotation, torn lines, uploaded files, records and settings."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError
from support.records import make_turn

from feedback.store import FeedbackStore, ReadReport
from schemas import Flag, Rating, Settings, Turn


def turn_of(conversation_id: str = "conversation-1", index: int = 0, text: str = "hi") -> Turn:
    return make_turn(conversation_id, index=index, text=text, model="echo")


def test_32_threads_appending_1000_records_each_give_32000_valid_lines(tmp_path):
    store = FeedbackStore(tmp_path, shard_max_bytes=256 * 1024)
    start = threading.Barrier(32)

    def work(worker: int) -> None:
        start.wait()
        for i in range(1000):
            store.append(turn_of(f"worker-{worker:04d}", i, f"message {i} of {worker}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()

    lines = [line for shard in store.shards("turns") for line in shard.read_text().splitlines()]
    assert len(lines) == 32_000
    records = [Turn.model_validate_json(line) for line in lines]
    per_worker = {}
    for record in records:
        per_worker.setdefault(record.conversation_id, []).append(record.turn_index)
    assert len(per_worker) == 32 and all(sorted(v) == list(range(1000)) for v in per_worker.values())
    assert len(store.shards("turns")) > 1  # rotated by size
    assert all(shard.stat().st_size <= 256 * 1024 for shard in store.shards("turns"))


def test_each_store_writes_its_own_shards(tmp_path):
    first, second = FeedbackStore(tmp_path), FeedbackStore(tmp_path)
    a, b = first.append(turn_of()), second.append(turn_of())
    assert a != b and first.writer_id in a.name and second.writer_id in b.name


def test_shards_rotate_by_age(tmp_path):
    store = FeedbackStore(tmp_path, shard_max_age=1e-9)
    paths = {store.append(turn_of(index=i)) for i in range(3)}
    assert len(paths) == 3


def test_torn_last_line_is_reported_and_skipped_and_new_records_go_to_a_new_shard(tmp_path):
    crashed = FeedbackStore(tmp_path)
    shard = crashed.append(turn_of(index=0))
    crashed.append(turn_of(index=1))
    crashed.close()
    with open(shard, "ab") as handle:
        handle.write(turn_of(index=2).model_dump_json().encode()[:40])  # a crash mid-write

    store = FeedbackStore(tmp_path)
    report = ReadReport()
    assert [t.turn_index for t in store.iter_records("turns", report)] == [0, 1]
    (bad,) = report.bad_lines
    assert bad.path == shard and bad.line == 3 and "torn" in bad.reason
    new_shard = store.append(turn_of(index=2))
    assert new_shard != shard
    assert sorted(t.turn_index for t in store.iter_records("turns")) == [0, 1, 2]


def test_invalid_lines_are_skipped_not_fatal(tmp_path):
    store = FeedbackStore(tmp_path)
    (tmp_path / "ratings" / "manual.jsonl").write_text('not json\n{"rating": "like"}\n[1]\n')
    report = ReadReport()
    assert list(store.iter_records("ratings", report)) == []
    assert [b.line for b in report.bad_lines] == [1, 2, 3]


def test_uploaded_files_are_stored_once_by_content(tmp_path):
    store = FeedbackStore(tmp_path / "data")
    (tmp_path / "a.PNG").write_bytes(b"same bytes")
    (tmp_path / "b.png").write_bytes(b"same bytes")
    first, second = store.store_file(tmp_path / "a.PNG"), store.store_file(tmp_path / "b.png")
    assert first == second and first.startswith("files/") and first.endswith(".png")
    assert (tmp_path / "data" / first).read_bytes() == b"same bytes"
    with pytest.raises(FileNotFoundError):
        store.store_file(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"shard_max_bytes": 0}, "shard_max_bytes"), ({"shard_max_age": -1}, "shard_max_age")],
)
def test_store_arguments_are_checked(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeedbackStore(tmp_path, **kwargs)


class TestRecords:
    def test_records_are_frozen_versioned_and_utc(self):
        rating = Rating(conversation_id="abcdefgh", message_id="12345678", rating="like")
        data = json.loads(rating.model_dump_json())
        assert data["schema_version"] == 1 and data["timestamp"].endswith("Z")
        with pytest.raises(ValidationError):
            rating.rating = "dislike"  # type: ignore[misc]

    @pytest.mark.parametrize(
        "bad",
        [
            {"conversation_id": "short"},
            {"conversation_id": "has space in it"},
            {"message_id": "x" * 65},
            {"reasons": []},
            {"reasons": [""]},
            {"unexpected": 1},
        ],
    )
    def test_invalid_flags_are_refused(self, bad):
        fields = {"conversation_id": "abcdefgh", "message_id": "12345678", "reasons": ["Other"]} | bad
        with pytest.raises(ValidationError):
            Flag(**fields)

    def test_naive_timestamps_are_refused_and_others_converted_to_utc(self):
        with pytest.raises(ValidationError):
            Rating(conversation_id="abcdefgh", message_id="12345678", rating=None, timestamp="2026-01-01T10:00:00")
        rating = Rating(
            conversation_id="abcdefgh", message_id="12345678", rating=None, timestamp="2026-01-01T10:00:00+02:00"
        )
        assert rating.timestamp.isoformat() == "2026-01-01T08:00:00+00:00"


class TestSettings:
    def test_defaults(self, monkeypatch):
        for name in ("FEEDBACK_RESPONDER", "FEEDBACK_DATA_DIR", "SPACE_ID"):
            monkeypatch.delenv(name, raising=False)
        settings = Settings()
        assert settings.responder == "echo" and settings.data_dir == Path("data")
        assert settings.flag_reasons == ("Inaccurate", "Harmful", "Off-topic", "Other")
        assert settings.max_message_chars == 100_000

    def test_environment_is_read_and_validated(self, monkeypatch, tmp_path):
        monkeypatch.setenv("FEEDBACK_FLAG_REASONS", "Wrong, Rude ,Other")
        monkeypatch.setenv("FEEDBACK_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        settings = Settings()
        assert settings.flag_reasons == ("Wrong", "Rude", "Other") and settings.data_dir == tmp_path
        assert "hf_secret" not in repr(settings) and settings.hf_token.get_secret_value() == "hf_secret"

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"FEEDBACK_RESPONDER": "gpt"}, "responder"),
            ({"FEEDBACK_RESPONDER": "openai"}, "FEEDBACK_MODEL"),
            ({"FEEDBACK_RESPONDER": "replay"}, "FEEDBACK_REPLAY_FILE"),
            ({"FEEDBACK_RESPONDER": "replay", "FEEDBACK_REPLAY_FILE": "/nope.jsonl"}, "is not a file"),
            ({"FEEDBACK_FLAG_REASONS": "Like,Other"}, "reserved"),
            ({"FEEDBACK_FLAG_REASONS": " , "}, "at least one"),
            ({"FEEDBACK_MAX_MESSAGE_CHARS": "0"}, "max_message_chars"),
        ],
    )
    def test_bad_settings_name_the_problem(self, monkeypatch, env, message):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError, match=message):
            Settings()
