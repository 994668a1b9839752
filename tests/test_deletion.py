"""Deleting a conversation from a data dir: the deletion record, the index, the local erasure
(``feedback.privacy.deletion``). The Hub side is in test_deletion_hub.py, the page/API in test_forget*.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.records import make_deletion, make_review, make_turn

from feedback.errors import FeedbackError
from feedback.index import INDEX_FILE
from feedback.privacy.deletion import ERASED_LEDGER, Eraser, NothingToDelete, erase_local
from feedback.recorder import FeedbackRecorder
from feedback.store import FeedbackStore
from schemas.records import Deletion, Turn

SECRET = "my card is 4111 and I live at 12 Elm Street"


def data_bytes(root: Path) -> dict[str, bytes]:
    """Every file under the data dir (index file, its WAL, ledgers included), by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def recorder(tmp_path):
    store = FeedbackStore(tmp_path / "data", shard_max_bytes=2_000)  # small shards: a conversation spans several
    recorder = FeedbackRecorder(store, flag_reasons=["Harmful", "Other"])
    recorder.index.wait_ready(30)
    yield recorder
    recorder.close()
    store.close()


def chat(
    recorder: FeedbackRecorder, conversation_id: str, turns: int, *, text: str, files: tuple[str, ...] = ()
) -> list[Turn]:
    written = []
    for i in range(turns):
        turn = make_turn(conversation_id, index=i, text=f"{text} #{i}", response=f"reply {i} to {text}", files=files)
        written.append(recorder.record_turn(turn))
        recorder.rate(conversation_id, turn.message_id, "like" if i % 2 else "dislike")
        recorder.flag(conversation_id, turn.message_id, ["Harmful"], comment=f"about {text}")
        recorder.write(make_review(conversation_id, turn.message_id, note=f"note on {text}"))
    return written


def records_by_kind(store: FeedbackStore) -> dict[str, list]:
    return {kind: list(store.iter_records(kind)) for kind in ("turns", "ratings", "flags", "reviews", "deletions")}


def test_forget_writes_a_deletion_record_and_erases_every_trace_of_the_conversation(recorder, tmp_path):
    store = recorder.store
    upload, shared = tmp_path / "only-mine.txt", tmp_path / "shared.txt"
    upload.write_text("an upload only the deleted conversation has")
    shared.write_text("an upload both conversations have")
    mine, both = store.store_file(upload), store.store_file(shared)
    chat(recorder, "forget-me-1", 6, text=SECRET, files=(mine, both))
    kept = chat(recorder, "keep-me-001", 6, text="the weather", files=(both,))
    before = records_by_kind(store)
    from feedback.review import QueueFilter, ReviewDesk

    assert {i.turn.conversation_id for i in ReviewDesk(recorder).queue(QueueFilter(status=None))} == {
        "forget-me-1",
        "keep-me-001",
    }  # indexed
    eraser = Eraser(recorder)

    deletion = eraser.forget("forget-me-1", requested_by="user")
    assert isinstance(deletion, Deletion) and deletion.requested_by == "user"
    assert eraser.wait(30)

    after = records_by_kind(store)
    assert [r.conversation_id for r in after["deletions"]] == ["forget-me-1"]
    for kind in ("turns", "ratings", "flags", "reviews"):  # every other record still there, exactly once
        assert after[kind] == [r for r in before[kind] if r.conversation_id != "forget-me-1"], kind
        assert len(after[kind]) == 6
    blobs = data_bytes(store.root)
    assert not any(SECRET.encode() in data for data in blobs.values()), [
        p for p, d in blobs.items() if SECRET.encode() in d
    ]
    assert not (store.root / mine).exists() and (store.root / both).exists()  # a file another conversation uses stays
    assert not (store.root / ".review-index.duckdb").exists()  # rebuilt at its next use, without them
    report = eraser.last_erasure
    assert report is not None and report.records == 24 and report.files == [mine]
    assert recorder.index.path("forget-me-1") == [] and recorder.owner(kept[0].message_id) == "keep-me-001"
    assert [ref.message_id for ref in recorder.index.path("keep-me-001")] == [t.message_id for t in kept]
    assert (store.root / ERASED_LEDGER).read_text().split() == ["forget-me-1"]
    queue = ReviewDesk(recorder).queue(
        QueueFilter(status=None)
    )  # the rebuilt review index: the other conversation's replies, right
    assert {i.turn.conversation_id for i in queue} == {"keep-me-001"} and len(queue) == 6
    assert all(i.turn.messages[-1].content.startswith("the weather") for i in queue)


def test_a_deleted_conversation_cannot_be_continued_rated_or_deleted_twice(recorder):
    turns = chat(recorder, "forget-me-2", 2, text=SECRET)
    eraser = Eraser(recorder)
    eraser.forget("forget-me-2", requested_by="reviewer", reviewer="ann")
    with pytest.raises(FeedbackError, match="was deleted"):
        recorder.conversation_id_or_new("forget-me-2")
    with pytest.raises(FeedbackError, match="was deleted"):
        recorder.rate("forget-me-2", turns[0].message_id, "like")
    with pytest.raises(NothingToDelete, match="already deleted"):
        eraser.forget("forget-me-2", requested_by="user")
    late = make_turn("forget-me-2", index=2, text=SECRET, response="a reply that was still streaming")
    assert recorder.record_turn(late) is late and recorder.index.path("forget-me-2") == []
    assert eraser.wait(30)
    assert not any(SECRET.encode() in data for data in data_bytes(recorder.store.root).values())


@pytest.mark.parametrize("value", ["", "short", "bad id with spaces", "x" * 65, None, 12345678, ["abcdefgh"]])
def test_a_malformed_id_is_refused_and_nothing_is_written(recorder, value):
    eraser = Eraser(recorder, resume=False)
    with pytest.raises(FeedbackError, match="malformed"):
        eraser.forget(value, requested_by="user")
    assert list(recorder.store.iter_records("deletions")) == []


def test_an_unknown_or_unrecorded_conversation_has_nothing_to_delete(recorder):
    eraser = Eraser(recorder, resume=False)
    with pytest.raises(NothingToDelete, match="nothing of conversation"):
        eraser.forget("never-seen-1", requested_by="user")
    assert list(recorder.store.iter_records("deletions")) == []
    deletion = eraser.forget("elsewhere-01", requested_by="operator", must_exist=False)  # another replica's
    assert deletion.conversation_id == "elsewhere-01" and eraser.wait(30)


def test_the_index_file_keeps_no_text_of_a_deleted_conversation(recorder):
    chat(recorder, "forget-me-3", 30, text=SECRET)
    chat(recorder, "keep-me-003", 3, text="other")
    Eraser(recorder).forget("forget-me-3", requested_by="user")
    index_files = {p: d for p, d in data_bytes(recorder.store.root).items() if p.startswith(INDEX_FILE)}
    assert index_files and not any(SECRET.encode() in data for data in index_files.values())


def test_an_erasure_cut_short_is_finished_at_the_next_start(tmp_path):
    store = FeedbackStore(tmp_path / "data")
    recorder = FeedbackRecorder(store, flag_reasons=["Harmful"])
    chat(recorder, "forget-me-4", 3, text=SECRET)
    chat(recorder, "keep-me-004", 3, text="other")
    recorder.write(make_deletion("forget-me-4"))  # the record, then a crash
    recorder.close()
    store.close()

    store = FeedbackStore(tmp_path / "data")
    recorder = FeedbackRecorder(store, flag_reasons=["Harmful"])
    assert recorder.index.is_deleted("forget-me-4")  # the catch-up reads the deletion records
    eraser = Eraser(recorder)
    eraser.start()
    assert eraser.wait(30)
    assert not any(SECRET.encode() in data for data in data_bytes(store.root).values())
    assert len(list(store.iter_records("turns"))) == 3
    recorder.close()
    store.close()


def test_erase_local_drops_a_torn_line_of_the_conversation_and_keeps_other_lines(recorder):
    chat(recorder, "forget-me-5", 1, text=SECRET)
    chat(recorder, "keep-me-005", 1, text="other")
    recorder.store.rotate()
    shard = recorder.store.shards("turns")[-1]
    with open(shard, "ab") as handle:  # a crash mid-line of the conversation
        handle.write(b'{"conversation_id":"forget-me-5","messages":[{"content":"' + SECRET.encode())
    report = erase_local(recorder.store, ["forget-me-5"], index=recorder.index)
    assert report.records >= 2
    assert not any(SECRET.encode() in data for data in data_bytes(recorder.store.root).values())
    assert [t.conversation_id for t in recorder.store.iter_records("turns")] == ["keep-me-005"]


def test_a_conversation_the_write_gate_kept_out_has_nothing_to_delete_and_writes_no_deletion(tmp_path):
    store = FeedbackStore(tmp_path / "data")
    recorder = FeedbackRecorder(store, flag_reasons=["Harmful"], gate=[lambda record: None])  # e.g. declined consent
    recorder.record_turn(make_turn("declined-01", text=SECRET))
    assert recorder.index.path("declined-01")  # it goes on in this process
    with pytest.raises(NothingToDelete, match="nothing of conversation"):
        Eraser(recorder, resume=False).forget("declined-01", requested_by="user")
    assert recorder.index.path("declined-01") == []  # forgotten in memory too
    assert list(store.iter_records("deletions")) == [] and not any(
        SECRET.encode() in data for data in data_bytes(store.root).values()
    )
    recorder.close()
    store.close()


def test_the_delete_command_refuses_a_data_dir_an_app_is_serving(tmp_path):
    import subprocess
    import sys

    from feedback.privacy.deletion import serving

    data = tmp_path / "data"
    store = FeedbackStore(data)
    recorder = FeedbackRecorder(store, flag_reasons=["Harmful"])
    chat(recorder, "forget-me-6", 1, text=SECRET)
    recorder.close()
    store.close()
    command = [sys.executable, "-m", "feedback", "delete", "--conversation", "forget-me-6", "--source", str(data)]
    repo = Path(__file__).resolve().parent.parent
    with serving(data):  # as `python app.py` does while it serves
        refused = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "an app is serving" in refused.stdout, refused.stdout + refused.stderr
    assert SECRET.encode() in b"".join(p.read_bytes() for p in data.glob("turns/*.jsonl"))
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any(SECRET.encode() in d for d in data_bytes(data).values())


def test_python_app_py_holds_its_data_dir_so_the_delete_command_refuses_it(tmp_path):
    import subprocess
    import sys

    from conftest import AppProcess

    data = tmp_path / "data"
    app = AppProcess({"FEEDBACK_DATA_DIR": str(data)}, tmp_path / "app.log").wait_ready()
    try:
        command = [
            sys.executable,
            "-m",
            "feedback",
            "delete",
            "--conversation",
            "any-conversation",
            "--source",
            str(data),
        ]
        refused = subprocess.run(
            command, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=120
        )
    finally:
        assert app.terminate() == 0
    assert refused.returncode == 1 and "an app is serving" in refused.stdout, refused.stdout + refused.stderr


def test_beside_an_app_serving_the_dir_the_shards_are_left_to_that_app_which_erases_them_at_its_next_start(recorder):
    from feedback.privacy.deletion import _locked

    chat(recorder, "forget-me-7", 2, text=SECRET)
    with _locked(recorder.store.root, __import__("fcntl").LOCK_SH):  # another process serving the dir
        eraser = Eraser(recorder, resume=False)
        eraser.forget("forget-me-7", requested_by="reviewer", reviewer="ann")  # e.g. the review command
        assert eraser.wait(30)
        assert recorder.index.path("forget-me-7") == []  # ignored at once ...
        assert SECRET.encode() in b"".join(p.read_bytes() for p in recorder.store.root.glob("turns/*.jsonl"))
    later = Eraser(recorder)  # ... and erased by the app's next start (its eraser resumes)
    later.start()
    assert later.wait(30)
    assert not any(SECRET.encode() in d for d in data_bytes(recorder.store.root).values())
