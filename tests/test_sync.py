"""Syncing to a dataset repo: the real ``huggingface_hub`` client against the local test Hub."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from conftest import TOKEN, AppProcess, hub_env, read_records
from gradio_client import Client
from huggingface_hub import HfApi
from support.hub import HubServer
from support.records import make_turn
from support.sync import RECORD_DIRS, chat_rate_flag, local_records, repo_records, same_records
from support.waiting import wait_until

from feedback.export.read import records_to_jsonl
from feedback.hub.files import complete_size
from feedback.hub.layout import repo_path
from feedback.hub.sync import FeedbackScheduler
from feedback.store import FeedbackStore
from schemas.records import Rating, Turn

REPO = Path(__file__).resolve().parent.parent


def load_dataset_counts(
    hub: HubServer, tmp_path: Path, repo_id: str, configs: tuple[str, ...] = RECORD_DIRS
) -> dict[str, int]:
    """``datasets.load_dataset(repo, config)`` for each config, in a subprocess pointed at the test Hub."""
    code = (
        "import json, sys, datasets\n"
        "out = {}\n"
        "for name in sys.argv[2:]:\n"
        "    ds = datasets.load_dataset(sys.argv[1], name, split='train')\n"
        "    out[name] = ds.num_rows\n"
        "    assert 'conversation_id' in ds.column_names\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, **hub_env(hub, tmp_path), "HF_DATASETS_CACHE": str(tmp_path / "ds-cache")}
    result = subprocess.run(
        [sys.executable, "-c", code, repo_id, *configs], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def start_app(hub: HubServer, tmp_path: Path, name: str, repo_id: str, every: float = 0.005) -> AppProcess:
    env = {
        **hub_env(hub, tmp_path),
        "FEEDBACK_DATA_DIR": str(tmp_path / name),
        "FEEDBACK_DATASET_REPO": repo_id,
        "FEEDBACK_SYNC_EVERY": str(every),
    }
    return AppProcess(env, tmp_path / f"{name}.log").wait_ready()


def numbered_turn(i: int) -> Turn:
    return make_turn(
        f"conversation-{i:06d}",
        f"message-{i:08d}",
        text=f"question number {i:06d}",
        response=f"answer number {i:06d}",
        model="echo",
        timestamp="2026-01-01T00:00:00Z",
    )


def test_app_process_pushes_every_record_exactly_once_and_datasets_reads_it(hub, tmp_path):
    repo_id = "test-user/feedback"
    app = start_app(hub, tmp_path, "data", repo_id)
    try:
        chat_rate_flag(app.url, 6)
        assert app.terminate() == 0, app.log()
    finally:
        app.kill()

    local = local_records(tmp_path / "data")
    assert [len(local[k]) for k in RECORD_DIRS] == [6, 6, 2]
    assert same_records(repo_records(hub, repo_id), local)
    card = hub.files(repo_id)["README.md"].decode()
    assert "config_name: turns" in card and "data_files: turns/*/*.parquet" in card and "are recorded" in card
    assert load_dataset_counts(hub, tmp_path, repo_id) == {"turns": 6, "ratings": 6, "flags": 2}
    assert TOKEN not in app.log() and TOKEN not in card
    assert hub.token_was_sent(TOKEN)


def test_three_replicas_push_to_one_repo_without_conflicts(hub, tmp_path):
    repo_id = "test-user/replicas"
    apps = [start_app(hub, tmp_path, f"replica{i}", repo_id) for i in range(3)]
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda app: chat_rate_flag(app.url, 5), apps))
        assert [app.terminate() for app in apps] == [0, 0, 0]
    finally:
        for app in apps:
            app.kill()
    local = {kind: [r for i in range(3) for r in read_records(tmp_path / f"replica{i}", kind)] for kind in RECORD_DIRS}
    assert [len(local[k]) for k in RECORD_DIRS] == [15, 15, 6]
    assert same_records(repo_records(hub, repo_id), local)


def test_bytes_per_commit_stay_flat_as_the_repo_grows(hub, tmp_path):
    store = FeedbackStore(tmp_path / "data")
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    scheduler = FeedbackScheduler(store=store, repo_id="test-user/growing", every=600, hf_api=api)
    try:
        scheduler.trigger().result()  # after the scheduler's own first (empty) push
        for batch in range(50):
            for i in range(20):
                store.append(numbered_turn(batch * 20 + i))
            assert scheduler.trigger().result() is not None
    finally:
        scheduler.stop()
    commits = [c for c in hub.commits("test-user/growing") if c["bytes_uploaded"]]
    sizes = [c["bytes_uploaded"] for c in commits]
    assert len(sizes) == 50
    assert max(sizes) <= 1.02 * min(sizes)  # every batch is about the same size; the repo's size never counts
    records = repo_records(hub, "test-user/growing")["turns"]
    assert len(records) == 1000 and len({r["message_id"] for r in records}) == 1000


def test_a_tick_never_queues_a_second_push_and_a_stopped_scheduler_pushes_nothing(hub, tmp_path):
    store = FeedbackStore(tmp_path / "data")
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    scheduler = FeedbackScheduler(store=store, repo_id="test-user/one-at-a-time", every=600, hf_api=api)
    try:
        scheduler.trigger().result()
        hub.hang(600, paths=r"/preupload/")  # the next push is held by the Hub
        store.append(numbered_turn(0))
        running = scheduler.trigger()
        assert hub.wait_held(1, timeout=30)
        store.append(numbered_turn(1))
        waiting = [scheduler.trigger() for _ in range(5)]  # ticks while the push hangs
        assert all(future is waiting[0] for future in waiting) and waiting[0] is not running
        assert not scheduler.final_push(timeout=0.2)  # still held: the final push gives up in time
        assert scheduler.stopped
        assert [f.path_in_repo.split("/")[0] for f in scheduler.unpushed()] == ["turns", "turns"]
        hub.clear_faults()
        assert running.result(timeout=30) is not None  # the push under way finishes...
        assert waiting[0].result(timeout=30) is None  # ...the one waiting never starts
        assert scheduler.trigger().result(timeout=1) is None
    finally:
        scheduler.stop()
    assert [r["message_id"] for r in repo_records(hub, "test-user/one-at-a-time")["turns"]] == [
        numbered_turn(0).message_id
    ]


def test_a_failing_hub_never_blocks_chat_and_loses_nothing(hub, tmp_path):
    repo_id = "test-user/faults"
    app = start_app(hub, tmp_path, "data", repo_id, every=0.005)
    client = Client(app.url, verbose=False)
    try:
        chat_rate_flag(app.url, 2)
        wait_until(lambda: len(repo_records(hub, repo_id)["turns"]) == 2, what="first push")

        def failed_commits(status: int) -> int:
            return sum(1 for r in hub.request_log if r.status == status and "/commit/" in r.path)

        for status in (500, 503, 429):  # the commit call is not retried by the client: each tick fails once
            hub.clear_faults()
            hub.fail(status, paths=r"/commit/")
            before = failed_commits(status)
            chat_rate_flag(app.url, 2)
            wait_until(
                lambda status=status, before=before: failed_commits(status) >= before + 2,
                what=f"two failed pushes ({status})",
            )

        hub.clear_faults()
        hub.hang(600)  # the Hub stops answering: a push is held open
        assert hub.wait_held(1, timeout=60)
        replies = [client.predict(f"while the hub hangs {i}", "", api_name="/chat") for i in range(5)]
        assert hub.held >= 1  # the chats above completed while a push was still hanging
        assert all(r["done"] for r in replies)
        hub.clear_faults()

        local = local_records(tmp_path / "data")
        wait_until(
            lambda: same_records(repo_records(hub, repo_id), local_records(tmp_path / "data")),
            timeout=120,
            what="every record to arrive after recovery",
        )
        client.close()
        assert app.terminate() == 0
    finally:
        app.kill()
    assert [len(local[k]) for k in RECORD_DIRS] == [13, 8, 4]
    warnings = [line for line in app.log().splitlines() if "push to test-user/faults failed" in line]
    assert warnings and all("Traceback" not in line for line in warnings)
    assert "Traceback" not in app.log() and TOKEN not in app.log()


def run_cli(hub: HubServer, tmp_path: Path, *args: str) -> str:
    env = {**os.environ, **hub_env(hub, tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "feedback", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert TOKEN not in result.stdout + result.stderr
    return result.stdout


def seed_data_dir(data_dir: Path, n: int = 30) -> None:
    store = FeedbackStore(data_dir)
    for i in range(n):
        turn = store.append(numbered_turn(i)) and numbered_turn(i)
        store.append(Rating(conversation_id=turn.conversation_id, message_id=turn.message_id, rating="like"))
    store.close()


def test_push_twice_uploads_nothing_new_and_pull_then_push_reproduces_the_repo(hub, tmp_path):
    seed_data_dir(tmp_path / "data")
    assert "pushed" in run_cli(hub, tmp_path, "push", str(tmp_path / "data"), "--repo", "test-user/first")
    uploaded = hub.total_upload_bytes
    commits = len(hub.commits("test-user/first"))
    assert "nothing new" in run_cli(hub, tmp_path, "push", str(tmp_path / "data"), "--repo", "test-user/first")
    assert hub.total_upload_bytes == uploaded and len(hub.commits("test-user/first")) == commits

    run_cli(hub, tmp_path, "pull", "test-user/first", str(tmp_path / "pulled"))
    assert same_records(local_records(tmp_path / "pulled"), local_records(tmp_path / "data"))
    run_cli(hub, tmp_path, "push", str(tmp_path / "pulled"), "--repo", "test-user/second")
    first, second = hub.files("test-user/first"), hub.files("test-user/second")
    assert {p: d for p, d in first.items() if p != ".gitattributes"} == {
        p: d for p, d in second.items() if p != ".gitattributes"
    }


def test_a_torn_shard_is_pushed_up_to_its_last_complete_line(hub, tmp_path):
    data_dir = tmp_path / "data"
    seed_data_dir(data_dir, n=3)
    (shard,) = sorted((data_dir / "turns").glob("*.jsonl"))
    complete = shard.read_bytes()
    with open(shard, "ab") as handle:
        handle.write(b'{"schema_version": 1, "conversation_id": "torn-conv')  # a crash mid-write
    assert complete_size(shard) == len(complete)

    run_cli(hub, tmp_path, "push", str(data_dir), "--repo", "test-user/torn")
    pushed = pq.read_table(io.BytesIO(hub.files("test-user/torn")[repo_path("turns", shard.name)])).to_pylist()
    # the complete lines, as Parquet in the shard's day partition
    assert [json.loads(line) for line in records_to_jsonl(pushed).splitlines()] == [
        json.loads(line) for line in complete.splitlines()
    ]
    assert load_dataset_counts(hub, tmp_path, "test-user/torn", ("turns", "ratings")) == {"turns": 3, "ratings": 3}
    # the app on the crashed data dir writes to a new shard and its records arrive too
    store = FeedbackStore(data_dir)
    assert store.append(numbered_turn(99)) != shard
    store.close()
    run_cli(hub, tmp_path, "push", str(data_dir), "--repo", "test-user/torn")
    assert len(repo_records(hub, "test-user/torn")["turns"]) == 4


def test_without_a_repo_the_app_logs_locally_and_says_so(tmp_path):
    env = {"FEEDBACK_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    app = AppProcess({k: v for k, v in env.items()}, tmp_path / "app.log").wait_ready()
    try:
        Client(app.url, verbose=False).predict("hello", "", api_name="/chat")
        assert app.terminate() == 0
    finally:
        app.kill()
    assert app.log().count("logging locally only") == 1
    assert len(read_records(tmp_path / "data", "turns")) == 1
