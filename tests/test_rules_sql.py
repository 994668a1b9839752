"""The rules as SQL (``feedback.rules.sql``, run by DuckDB over a review index) give the same queue and
stats as the Arrow engine (``feedback.rules``) on the same records: the fixture set of ``test_rules``,
any records hypothesis makes, and the same records read from a data dir's shards."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.rules import (
    EVERY_STATUS,
    MIDS,
    OWNER,
    RECORDS,
    deletions_strategy,
    flags_strategy,
    interleaved,
    ratings_strategy,
    reviews_strategy,
    same_stats,
    sql_queue_and_stats,
    turn,
)

from feedback.review.index import INDEX_NAME, ReviewIndex
from feedback.review.queue import QueueFilter, build_queue, filter_queue, queue_page
from feedback.review.sources import RecordsSource, ShardSource
from feedback.review.stats import compute_stats, index_stats
from feedback.store import FeedbackStore
from schemas.records import Record


def test_the_fixture_records_give_the_same_queue_and_stats():
    page, stats = sql_queue_and_stats(RecordsSource(RECORDS))
    assert page.items == build_queue(RECORDS) and page.total == len(page.items) == 5
    same_stats(stats, compute_stats(RECORDS))


@pytest.mark.parametrize(
    "queue_filter",
    [
        QueueFilter(),
        QueueFilter(reason="Inaccurate"),
        QueueFilter(model="m1"),
        QueueFilter(status="confirmed"),
        QueueFilter(reason="Harmful", status=None),
    ],
)
def test_filters_and_pages_match_the_record_filter(queue_filter):
    expected = filter_queue(build_queue(RECORDS), queue_filter)
    source = RecordsSource(RECORDS)
    with ReviewIndex(source).connect() as con:
        pages = [queue_page(con, source, queue_filter, offset=offset, limit=2) for offset in range(0, 6, 2)]
    assert [item for page in pages for item in page.items] == expected
    assert {page.total for page in pages} == {len(expected)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ratings_strategy, flags_strategy, reviews_strategy, deletions_strategy, st.integers(0, 60))
def test_sql_and_arrow_agree_on_any_records(ratings, flags, reviews, deletions, place):
    turns = [turn(OWNER[mid], mid) for mid in MIDS] + [turn(OWNER[mid], mid) for mid in MIDS[:2]]
    records: list[Record] = interleaved(
        [*turns, *(r for group in (*ratings, *flags, *reviews) for r in group)], deletions, place
    )
    page, stats = sql_queue_and_stats(RecordsSource(records))
    assert page.items == build_queue(records)
    same_stats(stats, compute_stats(records))
    deleted = {d.conversation_id for d in deletions}
    assert not any(item.turn.conversation_id in deleted for item in page.items)


def write(data_dir, records: list[Record]) -> None:
    store = FeedbackStore(data_dir, shard_max_bytes=1500)  # many shards
    for record in records:
        store.append(record)
    store.close()


def test_a_data_dir_read_through_the_index_file_gives_what_its_records_give(tmp_path):
    write(tmp_path, RECORDS)
    (tmp_path / "ratings" / "zz-torn.jsonl").write_bytes(b'{"not": "json"\n{"conversation_id": "conv-aa')
    page, stats = sql_queue_and_stats(ShardSource(tmp_path), tmp_path / INDEX_NAME)
    assert page.items == build_queue(RECORDS)
    same_stats(stats, compute_stats(RECORDS))
    assert (tmp_path / INDEX_NAME).is_file()


def test_the_index_catches_up_with_new_changed_and_removed_shards(tmp_path):
    source = ShardSource(tmp_path)
    index = ReviewIndex(source, tmp_path / INDEX_NAME)
    store = FeedbackStore(tmp_path)
    half = len(RECORDS) // 2
    for record in RECORDS[:half]:
        store.append(record)
    with index.connect() as con:
        assert queue_page(con, source, EVERY_STATUS, limit=None).items == build_queue(RECORDS[:half])
    for record in RECORDS[half:]:  # the open shards grow: read again
        store.append(record)
    with index.connect() as con:
        assert queue_page(con, source, EVERY_STATUS, limit=None).items == build_queue(RECORDS)
        assert index.refresh(con) == {"turns": 0, "ratings": 0, "flags": 0, "reviews": 0, "deletions": 0}
    for shard in (tmp_path / "flags").glob("*.jsonl"):
        shard.unlink()
    with index.connect() as con:
        assert queue_page(con, source, EVERY_STATUS, limit=None).items == []
        assert index_stats(con).flags_per_reason.empty


def test_a_page_reads_only_its_replies_records(tmp_path):
    class Counting(RecordsSource):
        fetched: ClassVar[Counter] = Counter()

        def fetch(self, kind, locators):
            self.fetched[kind] += len(locators)
            return super().fetch(kind, locators)

    source = Counting(RECORDS)
    with ReviewIndex(source).connect() as con:
        (item,) = queue_page(con, source, EVERY_STATUS, limit=1, offset=4).items
    assert item.message_id == "copied-reply"
    assert source.fetched == {"turns": 1, "ratings": 1, "flags": 1, "reviews": 0}
