"""Deleting a conversation from replicas that push to one repo, against the test Hub with the real
``huggingface_hub`` client: three replicas (stores, recorders, erasers and syncs in this process, pushes
triggered by the test); one deletes a conversation; it is then gone from every data dir (the others after
their next push), their conversation indexes, the repo's head (no file holds its id outside the deletion
records, no file its text; its uploaded file gone unless another conversation uses it) and, with
``--purge-history``, from every revision; every other record is there exactly once; a replica that was
down during the deletion does not upload the deleted records when it comes back. Then
``python -m feedback delete`` against a data dir and against the repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import TOKEN, hub_env
from huggingface_hub import HfApi
from support.hub import HubServer
from support.hub.records import canonical, file_text, repo_state, revisions
from support.records import make_turn

from feedback.hub.compact import compact_repo
from feedback.hub.erase import purge
from feedback.hub.files import ErasureLedger
from feedback.hub.sync import HubSync
from feedback.hub.transfer import push_folder
from feedback.privacy.deletion import Eraser
from feedback.recorder import FeedbackRecorder
from feedback.store import FeedbackStore
from schemas.records import RECORD_TYPES, Flag, Rating, Record, Review
from schemas.settings import DEFAULT_FLAG_REASONS

REPO = "test-user/three"
ROOT = Path(__file__).resolve().parent.parent
USER_KINDS = ("turns", "ratings", "flags", "reviews")
KINDS = tuple(RECORD_TYPES)


def hub_api(hub: HubServer) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


class Replica:
    """One app's data side: store, recorder, eraser and a sync pushing only when :meth:`push` asks."""

    def __init__(self, hub: HubServer, root: Path, repo_id: str = REPO) -> None:
        self.root = root
        self.store = FeedbackStore(root)
        self.recorder = FeedbackRecorder(self.store, flag_reasons=DEFAULT_FLAG_REASONS)
        self.sync = HubSync(
            self.store,
            repo_id=repo_id,
            token=TOKEN,
            every=600,
            hf_api=hub_api(hub),
            compact_hours=0,
            index=self.recorder.index,
        )
        self.sync.start()
        self.sync._thread.join(60)  # connected (the scheduler's first push runs in the background)
        assert self.sync.scheduler is not None, self.sync._connect_error
        self.eraser = Eraser(self.recorder, sync=self.sync)
        self.written: list[Record] = []

    def write(self, record: Record) -> Record:
        written = self.recorder.write(record)
        assert written is not None
        self.written.append(written)
        return written

    def push(self) -> None:
        self.sync.scheduler.trigger().result(120)
        assert self.sync.scheduler.last_error is None or not self.sync.scheduler.unpushed(), (
            self.sync.scheduler.last_error
        )

    def crash(self) -> None:
        """Stop without a final push (the process died): what was not pushed stays on disk."""
        self.eraser.close()
        self.sync.scheduler.stop()
        self.recorder.close()
        self.store.close()

    def close(self) -> None:
        self.eraser.close()
        self.sync.close()
        self.recorder.close()
        self.store.close()


def conversation(
    replica: Replica, cid: str, texts: list[str], *, files: tuple[str, ...] = (), start: int = 0, flagged: bool = False
) -> list[Record]:
    """Turns of ``cid`` (the first carrying ``files``), a rating of each reply, and a flag and a review of the
    last one when ``flagged``."""
    records = []
    for number, text in enumerate(texts, start=start):
        turn = replica.write(
            make_turn(
                cid,
                f"{cid}-m{number}",
                index=number,
                text=text,
                files=files if number == start else (),
                response=f"reply to {text}",
                model="echo",
            )
        )
        records += [
            turn,
            replica.write(
                Rating(conversation_id=cid, message_id=turn.message_id, rating="like" if number % 2 else "dislike")
            ),
        ]
    if flagged:
        records += [
            replica.write(
                Flag(
                    conversation_id=cid,
                    message_id=records[-2].message_id,
                    reasons=["Harmful"],
                    comment=f"flag of {cid}",
                )
            ),
            replica.write(
                Review(conversation_id=cid, message_id=records[-2].message_id, decision="confirmed", reviewer="ann")
            ),
        ]
    return records


def local_bytes(root: Path, kinds: tuple[str, ...] = USER_KINDS) -> bytes:
    """Every shard of ``kinds`` in a data dir, concatenated."""
    return b"".join(path.read_bytes() for kind in kinds for path in sorted((root / kind).glob("*.jsonl")))


def expected_state(records: list[Record]) -> dict[str, Counter]:
    state: dict[str, Counter] = {kind: Counter() for kind in USER_KINDS}
    for record in records:
        if record.kind in state:
            state[record.kind][canonical(json.loads(record.model_dump_json()))] += 1
    return state


def leaks(hub: HubServer, repo_id: str, revision: str, cid: str, texts: list[str]) -> list[str]:
    """Files of the repo at ``revision`` that hold the conversation's id (outside the deletion records) or
    any of its texts."""
    found = []
    for path, data in hub.files(repo_id, revision).items():
        text = file_text(path, data)
        if any(t in text for t in texts) or (cid in text and not path.startswith("deletions/")):
            found.append(path)
    return found


def leaks_in_history(hub: HubServer, repo_id: str, cid: str, texts: list[str]) -> dict[str, list[str]]:
    """Through the client: every commit of every branch and conversion branch (``list_repo_refs``,
    ``list_repo_commits``), every file of it read back (``HfFileSystem``); the files that hold the
    conversation's id (outside the deletion records) or its texts, by commit."""
    from huggingface_hub import HfFileSystem

    api, fs = hub_api(hub), HfFileSystem(endpoint=hub.endpoint, token=TOKEN, skip_instance_cache=True)
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    commits = {
        c.commit_id
        for ref in [*refs.branches, *refs.converts]
        for c in api.list_repo_commits(repo_id, repo_type="dataset", revision=ref.ref)
    }
    found = {}
    for oid in sorted(commits):
        for path in api.list_repo_files(repo_id, repo_type="dataset", revision=oid):
            text = file_text(path, fs.cat_file(f"datasets/{repo_id}@{oid}/{path}"))
            if any(t in text for t in texts) or (cid in text and not path.startswith("deletions/")):
                found.setdefault(oid, []).append(path)
    return found


def upload(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_a_conversation_deleted_on_one_of_three_replicas_is_gone_everywhere_and_nothing_else_is(hub, tmp_path):
    a, b, c = (Replica(hub, tmp_path / name) for name in ("a", "b", "c"))
    victim, texts = "victim-conversation-0001", ["my secret address is 12 Elm Street", "and my card 4111"]
    replies = [f"reply to {t}" for t in texts]
    try:
        own_file = a.store.store_file(upload(tmp_path, "scan.png", b"\x89PNG only the victim's scan"))
        shared = upload(tmp_path, "shared.pdf", b"%PDF a file two conversations carry")
        shared_file = a.store.store_file(shared)
        b.store.store_file(shared)
        conversation(a, victim, texts[:1], files=(own_file, shared_file), flagged=True)
        conversation(a, "keep-a-000001", ["weather today?", "and tomorrow?"], flagged=True)
        conversation(b, "keep-b-000001", ["a recipe please"], files=(shared_file,), flagged=True)
        conversation(c, "keep-c-000001", ["translate this"])
        # the victim continued on replica b and c (a load balancer sent its client there)
        conversation(b, victim, texts[1:], start=1)
        conversation(c, victim, ["a third secret: pin 9876"], start=2)
        texts.append("a third secret: pin 9876")
        replies += [f"reply to {t}" for t in texts[1:]]
        for replica in (a, b, c):
            replica.push()
        compact_repo(REPO, api=hub_api(hub), min_age_days=-1)  # ~c files and the flagged view hold it too
        assert leaks(hub, REPO, "main", victim, texts)
        # c goes down with records of the victim it never pushed
        conversation(c, victim, ["c's unpushed secret 5555"], start=3)
        conversation(c, "keep-c-000002", ["c's unpushed other conversation"])
        texts.append("c's unpushed secret 5555")
        c.crash()
        c_written = c.written
        before = revisions(hub, REPO)

        a.eraser.forget(victim, requested_by="user")
        assert a.eraser.wait(120)
        erasure = a.sync.last_erasure
        assert erasure is not None and erasure.repo is not None, erasure
        assert len(erasure.repo.commits) == 1 and erasure.repo.files == [own_file]
        assert erasure.repo.rewritten and erasure.local.records == 4  # its turn, rating, flag and review on a

        # the head: no file holds its id (but the deletion record) or its text; its own upload gone, the shared kept
        assert leaks(hub, REPO, "main", victim, texts + replies) == []
        head = hub.files(REPO)
        assert own_file not in head and shared_file in head
        assert victim.encode() not in local_bytes(a.root) and not (a.root / own_file).exists()
        assert a.recorder.index.path(victim) == [] and a.recorder.index.is_deleted(victim)

        # a's next push sends none of its rewritten shards again; b erases its copy before its next push
        a.push()
        b.push()
        assert victim.encode() not in local_bytes(b.root) and b.recorder.index.is_deleted(victim)
        # c comes back: its unpushed records of the victim are erased before its first push
        c = Replica(hub, tmp_path / "c")
        c.written = c_written
        c.push()
        assert victim.encode() not in local_bytes(c.root) and c.recorder.index.is_deleted(victim)
        assert leaks(hub, REPO, "main", victim, texts + replies) == []

        kept = [r for replica in (a, b, c) for r in replica.written if r.conversation_id != victim]
        state = repo_state(hub, REPO, (*USER_KINDS, "deletions"))
        assert {kind: state[kind] for kind in USER_KINDS} == expected_state(kept)
        assert sum(state["deletions"].values()) == 1
        for replica in (a, b, c):
            mine = expected_state([r for r in replica.written if r.conversation_id != victim])
            local = {
                kind: Counter(canonical(json.loads(line)) for line in local_bytes(replica.root, (kind,)).splitlines())
                for kind in USER_KINDS
            }
            assert all(local[kind] >= mine[kind] for kind in USER_KINDS)
        # the history still holds it (no purge asked): a revision before the erasure does; purging discards it
        assert any(leaks(hub, REPO, oid, victim, texts) for oid in before)
        hub.convert_branch(
            REPO,
            {
                "default/train/0000.parquet": hub.files(REPO, before[-1])[
                    next(p for p in hub.files(REPO, before[-1]) if p.startswith("turns/"))
                ]
            },
        )
        assert leaks_in_history(hub, REPO, victim, texts + replies)
        purged = purge(hub_api(hub), REPO)
        assert purged.squashed and purged.deleted == ["refs/convert/parquet"] and purged.commits > 5
        assert leaks_in_history(hub, REPO, victim, texts + replies) == {}
        assert {kind: repo_state(hub, REPO, USER_KINDS)[kind] for kind in USER_KINDS} == expected_state(kept)
    finally:
        for replica in (a, b, c):
            replica.close()


def test_an_erasure_while_the_hub_is_down_is_made_before_the_next_push(hub, tmp_path):
    replica = Replica(hub, tmp_path / "data", repo_id="test-user/down")
    try:
        conversation(replica, "gone-while-down1", ["private while down"])
        conversation(replica, "stays-while-down", ["public"])
        replica.push()
        hub.fail(503, reads=True)
        replica.eraser.forget("gone-while-down1", requested_by="user")
        assert replica.eraser.wait(120)
        assert replica.sync.last_erasure.repo is None and replica.sync.last_erasure.error
        assert ErasureLedger(replica.root, "test-user/down").pending == {"gone-while-down1"}
        assert b"gone-while-down1" not in local_bytes(replica.root)
        assert leaks(hub, "test-user/down", "main", "gone-while-down1", ["private while down"])
        hub.clear_faults()
        replica.push()  # the owed erasure first, then the deletion record
        assert leaks(hub, "test-user/down", "main", "gone-while-down1", ["private while down"]) == []
        assert ErasureLedger(replica.root, "test-user/down").pending == set()
        state = repo_state(hub, "test-user/down", (*USER_KINDS, "deletions"))
        assert {k: state[k] for k in USER_KINDS} == expected_state(
            [r for r in replica.written if r.conversation_id != "gone-while-down1"]
        )
        assert sum(state["deletions"].values()) == 1
        # a push with nothing new costs the head's commit and one listing of deletions/, and reads nothing
        seen = len(hub.request_log)
        replica.push()
        paths = [r.path for r in hub.request_log[seen:]]
        head = hub.head("test-user/down")
        assert paths == [
            "/api/datasets/test-user/down/revision/main",
            f"/api/datasets/test-user/down/tree/{head}/deletions",
        ], paths
    finally:
        replica.close()


def run_cli(hub: HubServer, tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, **hub_env(hub, tmp_path), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "feedback", "delete", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )


def write_dir(root: Path, conversations: dict[str, str]) -> list[Record]:
    store = FeedbackStore(root)
    recorder = FeedbackRecorder(store, flag_reasons=DEFAULT_FLAG_REASONS)
    records = []
    try:
        for cid, text in conversations.items():
            turn = make_turn(cid, f"{cid}-m0", text=text, response=f"reply to {text}", model="echo")
            records += [
                recorder.write(turn),
                recorder.write(Rating(conversation_id=cid, message_id=turn.message_id, rating="like")),
            ]
    finally:
        recorder.close()
        store.close()
    return records


def test_the_delete_command_on_a_data_dir(hub, tmp_path):
    data = tmp_path / "data"
    records = write_dir(data, {"cli-victim-0001": "delete me from the dir", "cli-keeper-0001": "keep me"})
    push_folder(data, "test-user/cli-dir", api=hub_api(hub))
    assert run_cli(hub, tmp_path, "--conversation", "bad id!", "--source", str(data)).returncode == 2
    assert (
        run_cli(hub, tmp_path, "--conversation", "cli-victim-0001", "--source", str(data), "--purge-history").returncode
        == 2
    )
    assert run_cli(hub, tmp_path, "--conversation", "cli-victim-0001", "--source", "not a dir").returncode == 2
    unknown = run_cli(hub, tmp_path, "--conversation", "never-recorded-01", "--source", str(data))
    assert unknown.returncode == 1 and "holds no turn of conversation never-recorded-01" in unknown.stdout
    done = run_cli(hub, tmp_path, "--conversation", "cli-victim-0001", "--source", str(data))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deleted 1 conversation(s)" in done.stdout and "test-user/cli-dir" in done.stdout
    assert b"delete me from the dir" not in local_bytes(data)
    assert b"cli-victim-0001" in local_bytes(data, ("deletions",))
    assert ErasureLedger(data, "test-user/cli-dir").pending == {"cli-victim-0001"}
    assert TOKEN not in done.stdout + done.stderr
    # the app's sync on that dir makes the repo erasure owed before its first push, and sends nothing twice
    replica = Replica(hub, data, repo_id="test-user/cli-dir")
    try:
        replica.push()
    finally:
        replica.close()
    assert leaks(hub, "test-user/cli-dir", "main", "cli-victim-0001", ["delete me from the dir"]) == []
    state = repo_state(hub, "test-user/cli-dir", (*USER_KINDS, "deletions"))
    assert {k: state[k] for k in USER_KINDS} == expected_state(
        [r for r in records if r.conversation_id != "cli-victim-0001"]
    )
    assert sum(state["deletions"].values()) == 1


def test_the_delete_command_on_the_repo_with_purge_history(hub, tmp_path):
    repo_id = "test-user/cli-repo"
    data = tmp_path / "data"
    records = write_dir(data, {"repo-victim-001": "purge me everywhere", "repo-keeper-001": "keep me please"})
    push_folder(data, repo_id, api=hub_api(hub))
    records += write_dir(data, {"repo-later-0001": "a later conversation"})
    push_folder(data, repo_id, api=hub_api(hub))
    # the dataset viewer's conversion holds a copy of the data
    parquet = [content for path, content in hub.files(repo_id).items() if path.endswith(".parquet")]
    hub.convert_branch(repo_id, {f"default/train/{i:04d}.parquet": content for i, content in enumerate(parquet)})
    assert (
        run_cli(
            hub, tmp_path, "--conversation", "repo-victim-001", "--source", repo_id, "--purge-history", stdin="no\n"
        ).returncode
        == 1
    )  # declined: nothing changed
    assert leaks(hub, repo_id, "main", "repo-victim-001", ["purge me everywhere"])
    result = run_cli(
        hub, tmp_path, "--conversation", "repo-victim-001", "--source", repo_id, "--purge-history", stdin="yes\n"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "squashes the" in result.stdout and "refs/convert/parquet" in result.stdout
    api = hub_api(hub)
    assert len(api.list_repo_commits(repo_id, repo_type="dataset")) == 1
    assert api.list_repo_refs(repo_id, repo_type="dataset").converts == []
    assert leaks_in_history(hub, repo_id, "repo-victim-001", ["purge me everywhere"]) == {}
    for oid in revisions(hub, repo_id):  # the test Hub holds no other commit either
        assert leaks(hub, repo_id, oid, "repo-victim-001", ["purge me everywhere"]) == []
    state = repo_state(hub, repo_id, (*USER_KINDS, "deletions"))
    kept = [r for r in records if r.conversation_id != "repo-victim-001"]
    assert {k: state[k] for k in USER_KINDS} == expected_state(kept)
    assert sum(state["deletions"].values()) == 1
    # an unknown conversation is refused, with no commit
    heads = len(hub.commits(repo_id))
    unknown = run_cli(hub, tmp_path, "--conversation", "never-here-0001", "--source", repo_id)
    assert unknown.returncode == 1 and "holds no record of conversation never-here-0001" in unknown.stdout
    assert len(hub.commits(repo_id)) == heads


def test_a_conversion_branch_the_hub_refuses_to_delete_is_reported(hub, tmp_path):
    repo_id = "test-user/protected"
    data = tmp_path / "data"
    write_dir(data, {"prot-victim-001": "refused purge text", "prot-keeper-001": "kept"})
    push_folder(data, repo_id, api=hub_api(hub))
    hub.convert_branch(repo_id, {"default/train/0.parquet": b"converted copy: refused purge text"})
    hub.protect_convert_refs = True
    result = run_cli(
        hub, tmp_path, "--conversation", "prot-victim-001", "--source", repo_id, "--purge-history", "--yes"
    )
    assert result.returncode == 1
    assert "the Hub refused to delete refs/convert/parquet" in result.stdout
    assert len(hub_api(hub).list_repo_commits(repo_id, repo_type="dataset")) == 1  # the squash stays done
    assert leaks(hub, repo_id, "main", "prot-victim-001", ["refused purge text"]) == []
    assert leaks(hub, repo_id, "refs/convert/parquet", "prot-victim-001", ["refused purge text"])


@pytest.mark.parametrize("files", [250])
def test_an_erasure_of_more_than_100_files_is_split_into_commits_each_consistent(hub, tmp_path, files):
    from feedback.hub.erase import MAX_COMMIT_FILES, erase_from_repo

    repo_id = "test-user/many"
    data = tmp_path / "data"
    store = FeedbackStore(data, shard_max_bytes=1)  # one record a shard: many files hold the conversation
    for number in range(files // 2):
        store.append(Rating(conversation_id="many-victim-01", message_id=f"many-m{number:04d}", rating="like"))
        store.append(Rating(conversation_id="many-keeper-01", message_id=f"many-k{number:04d}", rating="like"))
    store.close()
    push_folder(data, repo_id, api=hub_api(hub))
    before = len(hub.commits(repo_id))
    result = erase_from_repo(repo_id, ["many-victim-01"], api=hub_api(hub))
    assert len(result.commits) == 1 + (files // 2 - 1) // MAX_COMMIT_FILES
    assert len(result.deleted) == files // 2 and len(hub.commits(repo_id)) == before + len(result.commits)
    for commit in hub.commits(repo_id)[before:]:
        assert commit["files_added"] + commit["files_deleted"] <= MAX_COMMIT_FILES
        state = repo_state(hub, repo_id, ("ratings",), commit["oid"])
        assert sum(1 for row in state["ratings"] if "many-keeper-01" in row) == files // 2
    assert leaks(hub, repo_id, "main", "many-victim-01", []) == []


def test_large_files_are_scanned_by_their_columns_and_rewritten_a_row_group_at_a_time(hub, tmp_path, monkeypatch):
    """Every file treated as large: the scan reads the footer and the ``conversation_id`` (and files) column
    chunks by byte range; the rewrite reads a row group at a time."""
    from feedback.hub import remote
    from feedback.hub.erase import erase_from_repo

    monkeypatch.setattr(remote, "WHOLE_FILE_BYTES", 0)
    monkeypatch.setattr(remote, "FOOTER_BYTES", 64)  # the footer needs a second read
    repo_id = "test-user/large"
    data = tmp_path / "data"
    records = write_dir(data, {f"large-{n:08d}": f"text number {n}" for n in range(30)})
    push_folder(data, repo_id, api=hub_api(hub))
    compact_repo(repo_id, api=hub_api(hub), min_age_days=-1)
    result = erase_from_repo(repo_id, ["large-00000007", "large-00000011"], api=hub_api(hub))
    assert result.records == 4 and len(result.commits) == 1  # a turn and a rating each (nothing flagged)
    for cid, text in (("large-00000007", "text number 7"), ("large-00000011", "text number 11")):
        assert leaks(hub, repo_id, "main", cid, [text]) == []
    state = repo_state(hub, repo_id, USER_KINDS)
    gone = ("large-00000007", "large-00000011")
    assert state == expected_state([r for r in records if r.conversation_id not in gone])


def test_forget_in_the_running_app_erases_the_repo_too(hub, tmp_path):
    """``python app.py`` syncing to the test Hub: ``/forget`` erases the conversation from its data dir and,
    through its sync, from the repo's head in one commit; every other record stays exactly once."""
    from conftest import AppProcess
    from gradio_client import Client

    repo_id = "test-user/app-forget"
    data = tmp_path / "data"
    env = {
        **hub_env(hub, tmp_path),
        "FEEDBACK_DATA_DIR": str(data),
        "FEEDBACK_DATASET_REPO": repo_id,
        "FEEDBACK_SYNC_EVERY": "0.01",
    }
    app = AppProcess(env, tmp_path / "app.log").wait_ready()
    try:
        client = Client(app.url, verbose=False)
        try:
            replies = {}
            for text in ("forget this secret 31337", "keep this question"):
                reply = client.predict({"text": text, "files": []}, "", api_name="/chat")
                replies[text] = reply
                client.predict(reply["conversation_id"], reply["message_id"], "like", api_name="/rate")
            victim = replies["forget this secret 31337"]["conversation_id"]
            wait_for(lambda: _exists(hub, repo_id) and leaks(hub, repo_id, "main", victim, []), app)  # pushed
            assert client.predict(victim, api_name="/forget")["deleted"] is True
            wait_for(lambda: not leaks(hub, repo_id, "main", victim, ["forget this secret 31337"]), app)
        finally:
            client.close()
        assert app.terminate() == 0
    finally:
        app.kill()
    assert b"forget this secret 31337" not in local_bytes(data) and victim.encode() not in local_bytes(data)
    kept = [json.loads(line) for line in local_bytes(data).splitlines()]
    state = repo_state(hub, repo_id, (*USER_KINDS, "deletions"))
    assert sum(state["turns"].values()) == 1 and sum(state["ratings"].values()) == 1
    assert Counter(canonical(r) for r in kept) == state["turns"] + state["ratings"]
    assert sum(state["deletions"].values()) == 1
    assert any(c["summary"].startswith("Erase 1 conversation(s)") for c in hub.commits(repo_id))


def wait_for(condition, app) -> None:  # noqa: ANN001 - a callable, an AppProcess
    """Poll the test Hub's state until ``condition`` holds (the app pushes on its own schedule)."""
    import time

    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, app.log()[-3000:]
        time.sleep(0.1)


def _exists(hub: HubServer, repo_id: str) -> bool:
    try:
        hub.head(repo_id)
    except KeyError:
        return False
    return True
