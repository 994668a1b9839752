"""The queue a page at a time (the page's handlers, ``/queue_items`` and ``stats --queue``), and a dataset
repo read in place giving the same queue, stats and exports as the data dir it was pushed from."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import TOKEN, hub_env
from huggingface_hub import HfApi
from support.records import write_day

from feedback.export import ExportOptions, export_data_dir, run_export
from feedback.hub.compact import compact_repo
from feedback.hub.remote import HubRepo, HubSource
from feedback.hub.transfer import push_folder
from feedback.recorder import FeedbackRecorder
from feedback.review.desk import ReviewDesk
from feedback.review.index import ReviewIndex
from feedback.review.queue import PAGE_SIZE, QueueFilter, build_queue, filter_queue
from feedback.review.stats import compute_stats
from feedback.store import FeedbackStore
from feedback.web.review_page import ReviewPage, page_info

TODAY = date(2026, 3, 10)
"""The day the compaction tests run on (as in test_compact)."""


REPO = Path(__file__).resolve().parent.parent


def seeded(data_dir: Path) -> list:
    """Two days of records: 70 flagged replies, some reviewed."""
    return write_day(data_dir, TODAY - timedelta(days=3), 40) + write_day(data_dir, TODAY - timedelta(days=2), 30)


def desk(data_dir: Path) -> ReviewDesk:
    return ReviewDesk(
        FeedbackRecorder(FeedbackStore(data_dir), flag_reasons=("Inaccurate", "Harmful")), reviewers=["ann"]
    )


class Request:
    username = "ann"


@pytest.mark.parametrize(
    "queue_filter",
    [
        QueueFilter(),
        QueueFilter(status=None),
        QueueFilter(reason="Harmful"),
        QueueFilter(model="m2", status="confirmed"),
        QueueFilter(since=TODAY - timedelta(days=2), status=None),
    ],
)
def test_pages_of_50_cover_the_filtered_queue_in_order(tmp_path, queue_filter):
    records = seeded(tmp_path)
    expected = [item.message_id for item in filter_queue(build_queue(records), queue_filter)]
    review = desk(tmp_path)
    pages = [review.page(queue_filter, offset=offset) for offset in range(0, 100, PAGE_SIZE)]
    assert [i.message_id for page in pages for i in page.items] == expected
    assert all(len(page.items) <= PAGE_SIZE and page.total == len(expected) for page in pages)


def test_the_page_handlers_and_the_api_page_the_queue(tmp_path):
    records = seeded(tmp_path)
    page = ReviewPage(desk(tmp_path))
    everything = [i.message_id for i in build_queue(records) if i.status == "open"]
    rows, ids, info = page.load_queue("(any)", "(any)", "", "", "open", 2, Request())
    assert ids == everything[PAGE_SIZE:] and len(rows) == len(ids)
    assert info == page_info(page.desk.page(QueueFilter(), offset=PAGE_SIZE)) and f"of {len(everything)}" in info
    loaded = page.refresh_all("Harmful", "(any)", "", "", "(any)", 1, Request())
    assert loaded[1] == [i.message_id for i in build_queue(records) if "Harmful" in i.reason_counts][:PAGE_SIZE]
    api = page.queue_items("", "m1", str(TODAY - timedelta(days=3)), str(TODAY - timedelta(days=3)), "", 1, Request())
    assert [i["message_id"] for i in api] == [
        i.message_id
        for i in filter_queue(
            build_queue(records),
            QueueFilter(model="m1", since=TODAY - timedelta(days=3), until=TODAY - timedelta(days=3), status=None),
        )
    ][:PAGE_SIZE]
    assert page.queue_items("", "", "", "", "open", 99, Request()) == []


def test_stats_prints_a_filtered_queue_page(tmp_path):
    records = seeded(tmp_path / "data")
    command = [
        sys.executable,
        "-m",
        "feedback",
        "stats",
        "--source",
        str(tmp_path / "data"),
        "--reason",
        "Harmful",
        "--status",
        "any",
        "--page",
        "1",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    harmful = [i for i in build_queue(records) if "Harmful" in i.reason_counts]
    assert f"Review queue: rows 1-{min(PAGE_SIZE, len(harmful))} of {len(harmful)}" in result.stdout
    assert all(i.message_id in result.stdout for i in harmful[:PAGE_SIZE])
    assert f"Open review queue: {sum(1 for i in build_queue(records) if i.status == 'open')}" in result.stdout


@pytest.fixture
def repo(hub, tmp_path) -> tuple[str, list]:
    records = seeded(tmp_path / "data")
    push_folder(tmp_path / "data", "test-user/in-place", api=HfApi(endpoint=hub.endpoint, token=TOKEN))
    return "test-user/in-place", records


@pytest.mark.parametrize("compacted", [False, True])
def test_a_repo_read_in_place_gives_the_local_queue_and_stats(hub, tmp_path, repo, compacted):
    repo_id, records = repo
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    if compacted:
        compact_repo(repo_id, api=api, today=TODAY)
    source = HubSource(HubRepo(repo_id, api=api))
    with ReviewIndex(source, tmp_path / "remote.duckdb").connect() as con:
        from feedback.review.queue import queue_page
        from feedback.review.stats import index_stats

        page = queue_page(con, source, QueueFilter(status=None), limit=None)
        stats = index_stats(con)
    assert page.items == build_queue(records)
    local = compute_stats(records)
    assert stats.table() == local.table()
    fetched = [r for r in hub.request_log if r.method == "GET" and "/resolve/" in r.path and "/turns/" in r.path]
    assert fetched  # turns were read by range, through the resolve endpoint: no snapshot download


@pytest.mark.parametrize("fmt", ["sft", "dpo", "kto", "flags"])
def test_an_export_of_a_repo_read_in_place_equals_the_local_export(hub, tmp_path, repo, fmt, monkeypatch):
    repo_id, _ = repo
    for key, value in hub_env(hub, tmp_path).items():
        monkeypatch.setenv(key, value)
    compact_repo(repo_id, api=HfApi(endpoint=hub.endpoint, token=TOKEN), today=TODAY, flagged=False)
    options = ExportOptions(test_size=0.3, seed=5, include_ids=True)
    local = export_data_dir(fmt, tmp_path / "data", options)
    remote = run_export(fmt, repo_id, tmp_path / "out", options, progress=False)
    for split in ("train", "test"):
        assert remote.rows(split) == local.rows(split)
    assert {k: v for k, v in remote.stats.items() if k != "records"} == {
        k: v for k, v in local.stats.items() if k != "records"
    }


def test_review_of_a_repo_merges_the_decisions_written_locally(hub, tmp_path, repo, monkeypatch):
    repo_id, _ = repo
    for key, value in hub_env(hub, tmp_path).items():
        monkeypatch.setenv(key, value)
    from feedback.cli.review import open_desk

    review, work = open_desk(repo_id, tmp_path / "work")
    first = review.queue()[0]
    review.decide(first.message_id, "dismissed", reviewer="ann")
    assert first.message_id not in [i.message_id for i in review.queue()]
    assert [p.name for p in (work / "reviews").glob("*.jsonl")] and not list((work / "turns").glob("*"))
    push_folder(work, repo_id, api=HfApi(endpoint=hub.endpoint, token=TOKEN))
    again, _ = open_desk(repo_id, tmp_path / "work")
    (item,) = again.queue(QueueFilter(status="dismissed"))  # pushed and local: the same review counts once
    assert item.message_id == first.message_id and len(item.reviews) == 1
