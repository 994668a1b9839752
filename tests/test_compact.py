"""The repo's layout and its compaction against the test Hub: every record exactly once before and after
(also while replicas push and while two compactions race), no commit over 100 files, ``load_dataset`` and
the card's configs return the same records, a restart never re-pushes a compacted shard, the ``flagged``
view is the review queue and the card's SQL runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import TOKEN, AppProcess, hub_env
from huggingface_hub import HfApi
from support.hub import HubServer
from support.records import write_day
from support.sync import chat_rate_flag

from feedback.export.read import records_to_jsonl
from feedback.hub.card import dataset_card, review_queries
from feedback.hub.compact import compact_repo
from feedback.hub.layout import FLAGGED
from feedback.hub.transfer import push_folder
from feedback.review.queue import QueueFilter, build_queue, filter_queue
from schemas.records import RECORD_TYPES

KINDS = tuple(RECORD_TYPES)
TODAY = date(2026, 3, 10)


def api(hub: HubServer) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


def repo_state(hub: HubServer, repo_id: str) -> dict[str, Counter]:
    """Every record in the repo, by kind, as a multiset of its JSON text."""
    state: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    for path, data in hub.files(repo_id).items():
        kind = path.split("/", 1)[0]
        if kind in state and path.endswith(".parquet"):
            rows = pq.read_table(io.BytesIO(data)).to_pylist()
            state[kind].update(
                json.dumps(json.loads(line), sort_keys=True) for line in records_to_jsonl(rows).splitlines()
            )
    return state


def as_state(records: list) -> dict[str, Counter]:
    state: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    for record in records:
        state[record.kind][json.dumps(json.loads(record.model_dump_json()), sort_keys=True)] += 1
    return state


def files_per_folder(hub: HubServer, repo_id: str) -> Counter:
    return Counter(path.rsplit("/", 1)[0] for path in hub.files(repo_id) if "/" in path)


def load_dataset_rows(hub: HubServer, tmp_path: Path, repo_id: str, configs: tuple[str, ...]) -> dict[str, list]:
    """``datasets.load_dataset(repo, config)`` rows (sorted JSON) per config, in a subprocess on the test Hub."""
    code = (
        "import json, sys, datasets\n"
        "out = {}\n"
        "for name in sys.argv[2:]:\n"
        "    ds = datasets.load_dataset(sys.argv[1], name, split='train')\n"
        "    out[name] = sorted(json.dumps(r, sort_keys=True, default=str) for r in ds)\n"
        "print(json.dumps(out))\n"
    )
    env = {
        **os.environ,
        **hub_env(hub, tmp_path),
        "HF_DATASETS_CACHE": str(tmp_path / f"ds-{len(os.listdir(tmp_path))}"),
    }
    result = subprocess.run(
        [sys.executable, "-c", code, repo_id, *configs],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def pushed(hub, tmp_path) -> tuple[str, list]:
    """Three days of records (the middle one of 120 shards per kind) pushed to a repo with its card."""
    return push_days(hub, tmp_path, ((-3, 4), (-2, 120), (0, 3)))


@pytest.fixture
def pushed_small(hub, tmp_path) -> tuple[str, list]:
    """Three days of records (the middle one of 12 shards per kind) pushed to a repo with its card."""
    return push_days(hub, tmp_path, ((-3, 4), (-2, 12), (0, 3)))


def push_days(hub, tmp_path: Path, days: tuple[tuple[int, int], ...]) -> tuple[str, list]:  # noqa: ANN001
    """``(day offset from TODAY, shards per kind)`` written and pushed to ``test-user/logs`` with its card."""
    data_dir = tmp_path / "data"
    records = []
    for offset, shards in days:
        records += write_day(data_dir, TODAY + timedelta(days=offset), shards)
    (data_dir / "README.md").write_text(dataset_card(repo_id="test-user/logs", license="other", consent="ok"))
    push_folder(data_dir, "test-user/logs", api=api(hub))
    return "test-user/logs", records


def test_pushes_and_compaction_keep_every_record_exactly_once_in_commits_of_at_most_100_files(hub, tmp_path, pushed):
    repo_id, records = pushed
    assert repo_state(hub, repo_id) == as_state(records)
    before = files_per_folder(hub, repo_id)
    assert before["ratings/2026-03-08"] == 120 and before["turns/2026-03-10"] == 3
    report = compact_repo(repo_id, api=api(hub), today=TODAY)
    assert repo_state(hub, repo_id) == as_state(records)
    after = files_per_folder(hub, repo_id)
    assert {
        after[f"{kind}/{day}"] for kind in KINDS if kind != "deletions" for day in ("2026-03-07", "2026-03-08")
    } == {1}
    assert after["turns/2026-03-10"] == 3  # not a day old yet: left as pushed
    assert report.merged and not report.skipped and report.flagged_rows == len(build_queue(records))
    for commit in hub.commits(repo_id):
        assert commit["files_added"] + commit["files_deleted"] <= 100, commit["summary"]
    # a second run has nothing left to merge
    again = compact_repo(repo_id, api=api(hub), today=TODAY)
    assert again.commits == [] and repo_state(hub, repo_id) == as_state(records)


def test_load_dataset_and_the_card_configs_return_the_same_records_before_and_after(hub, tmp_path, pushed):
    repo_id, records = pushed
    configs = ("turns", "ratings", "flags", "reviews")
    card = yaml.safe_load(hub.files(repo_id)["README.md"].decode().split("---")[1])
    assert [c["config_name"] for c in card["configs"]] == [*configs, "deletions", FLAGGED]
    before = load_dataset_rows(hub, tmp_path, repo_id, configs)
    assert {name: len(rows) for name, rows in before.items()} == {
        k: sum(as_state(records)[k].values()) for k in configs
    }
    compact_repo(repo_id, api=api(hub), today=TODAY)
    after = load_dataset_rows(hub, tmp_path, repo_id, (*configs, FLAGGED))
    assert {name: after[name] for name in configs} == before
    assert len(after[FLAGGED]) == len(build_queue(records))


def test_the_flagged_view_is_the_review_queue_and_the_card_queries_run(hub, tmp_path, pushed):
    repo_id, records = pushed
    compact_repo(repo_id, api=api(hub), today=TODAY)
    files = hub.files(repo_id)
    local = tmp_path / "repo"
    for path, data in files.items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_bytes(data)
    flagged = pq.read_table(local / FLAGGED).to_pylist()
    queue = build_queue(records)
    assert [(r["message_id"], r["status"], r["flag_count"], r["rating"]) for r in flagged] == [
        (i.message_id, i.status, len(i.flags), i.rating) for i in queue
    ]
    first = flagged[0]
    assert first["messages"][-1]["content"].startswith("question") and first["response"].startswith("answer")
    assert first["flag_comments"] and first["reasons"][0]["count"] == 1
    con = duckdb.connect()
    answers = {}
    for title, sql in review_queries(repo_id):
        answers[title] = con.execute(
            sql.replace(f"hf://datasets/{repo_id}", str(local))
            .replace("'MODEL NAME'", "'m2'")
            .replace("now()", "TIMESTAMP '2026-03-10 12:00'")
        ).fetchall()
    by_reason = {reason: n for reason, n, _ in answers["Open flags by reason"]}
    open_items = filter_queue(queue, QueueFilter())
    assert by_reason == dict(Counter(r for item in open_items for r in item.reason_counts))
    model_week = answers["A model's flagged replies this week (set the model's name)"]
    assert len(model_week) == sum(
        1 for i in queue if i.turn.model == "m2" and i.last_flagged.date() >= date(2026, 3, 3)
    )


def test_a_restart_never_pushes_a_compacted_shard_again(hub, tmp_path, pushed):
    repo_id, records = pushed
    compact_repo(repo_id, api=api(hub), today=TODAY)
    commits = len(hub.commits(repo_id))
    assert push_folder(tmp_path / "data", repo_id, api=api(hub)) is None  # the ledger: nothing new
    assert len(hub.commits(repo_id)) == commits and repo_state(hub, repo_id) == as_state(records)


def test_two_compactions_at_once_and_replicas_pushing_meanwhile_lose_and_double_nothing(hub, tmp_path):
    repo_id = "test-user/busy"
    data_dir = tmp_path / "old"
    records = write_day(data_dir, TODAY - timedelta(days=5), 60)
    push_folder(data_dir, repo_id, api=api(hub))
    apps = [
        AppProcess(
            {
                **hub_env(hub, tmp_path),
                "FEEDBACK_DATA_DIR": str(tmp_path / f"replica{i}"),
                "FEEDBACK_DATASET_REPO": repo_id,
                "FEEDBACK_SYNC_EVERY": "0.005",
            },
            tmp_path / f"replica{i}.log",
        ).wait_ready()
        for i in range(2)
    ]
    try:
        chatting = [threading.Thread(target=chat_rate_flag, args=(app.url, 8)) for app in apps]
        for thread in chatting:
            thread.start()
        # compact today's partition too (the day "ended": min_age_days=-1) while the replicas push into it
        results: list = []
        racing = [
            threading.Thread(
                target=lambda: results.append(compact_repo(repo_id, api=api(hub), min_age_days=-1, flagged=False))
            )
            for _ in range(2)
        ]
        for thread in racing:
            thread.start()
        for thread in [*racing, *chatting]:
            thread.join(240)
        assert [app.terminate() for app in apps] == [0, 0]
    finally:
        for app in apps:
            app.kill()
    from support.sync import local_records

    expected = as_state(records)
    for i in range(2):
        for kind, rows in local_records(tmp_path / f"replica{i}").items():
            expected[kind].update(json.dumps(row, sort_keys=True) for row in rows)
    assert repo_state(hub, repo_id) == expected
    assert len(results) == 2 and sum(len(r.commits) for r in results) >= 1
    final = compact_repo(repo_id, api=api(hub), min_age_days=-1, flagged=False)
    assert repo_state(hub, repo_id) == expected and not final.skipped


def commits(hub: HubServer, repo_id: str) -> list[dict]:
    """The repo's commits (none while it does not exist yet)."""
    try:
        return hub.commits(repo_id)
    except KeyError:
        return []


def test_the_app_compacts_its_repo_on_its_own(hub, tmp_path, monkeypatch):
    import time

    from feedback.hub import sync
    from feedback.store import FeedbackStore

    monkeypatch.setattr(sync, "COMPACT_FIRST_SECONDS", 0.5)
    data_dir = tmp_path / "data"
    records = write_day(data_dir, date.today() - timedelta(days=4), 5)
    hub_sync = sync.HubSync(
        FeedbackStore(data_dir), repo_id="test-user/self", token=TOKEN, every=600, hf_api=api(hub), compact_hours=1
    )
    hub_sync.start()
    try:
        deadline = time.monotonic() + 120
        while not any(c["summary"].startswith("Rewrite the flagged view") for c in commits(hub, "test-user/self")):
            assert time.monotonic() < deadline, [c["summary"] for c in commits(hub, "test-user/self")]
            time.sleep(0.2)
    finally:
        hub_sync.close()
    assert any(c["summary"].startswith("Compact 5 turns files") for c in hub.commits("test-user/self"))
    assert repo_state(hub, "test-user/self") == as_state(records)
    assert {n for folder, n in files_per_folder(hub, "test-user/self").items() if folder.split("/")[0] in KINDS} == {1}


def test_the_compact_command(hub, tmp_path, pushed):
    repo_id, records = pushed
    env = {**os.environ, **hub_env(hub, tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    result = subprocess.run(
        [sys.executable, "-m", "feedback", "compact", repo_id, "--min-age-days", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"compacted {repo_id}: " in result.stdout and "files merged into" in result.stdout
    assert repo_state(hub, repo_id) == as_state(records)
    assert TOKEN not in result.stdout + result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "feedback", "compact", "not a repo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert bad.returncode == 1 and "is not a Hub dataset repo id" in bad.stdout


def test_large_files_are_read_by_row_group_and_span(hub, tmp_path, pushed_small, monkeypatch):
    """Every file treated as large: merged a row group at a time, read by byte spans (footer, row groups)."""
    from feedback.hub import compact, remote

    monkeypatch.setattr(remote, "WHOLE_FILE_BYTES", 0)
    monkeypatch.setattr(compact, "WHOLE_FILE_BYTES", 0)
    monkeypatch.setattr(remote, "FOOTER_BYTES", 64)  # the footer needs a second read
    repo_id, records = pushed_small
    report = compact_repo(repo_id, api=api(hub), today=TODAY)
    assert report.merged and repo_state(hub, repo_id) == as_state(records)
    assert report.flagged_rows == len(build_queue(records))


def test_a_repo_of_the_flat_layout_is_not_pushed_twice_and_compaction_converts_it(hub, tmp_path):
    """A repo an earlier version filled (``turns/<shard>.jsonl``): pushing the same data dir again sends no
    record twice, and compaction turns the flat shards into day partitions."""
    data_dir = tmp_path / "data"
    records = write_day(data_dir, TODAY - timedelta(days=3), 3)
    hub_api = api(hub)
    hub_api.create_repo("test-user/old", repo_type="dataset")
    hub_api.upload_folder(repo_id="test-user/old", repo_type="dataset", folder_path=data_dir)
    assert push_folder(data_dir, "test-user/old", api=hub_api) is None or not any(
        path.endswith(".parquet") for path in hub.files("test-user/old")
    )
    compact_repo("test-user/old", api=hub_api, today=TODAY, flagged=False)
    assert not any(path.endswith(".jsonl") for path in hub.files("test-user/old"))
    assert repo_state(hub, "test-user/old") == as_state(records)
