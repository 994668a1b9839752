"""A deleted conversation is ignored by every reader from the moment its deletion record exists.

Conversation C (``GONE``) has everything that would put it in every reader's output: liked and disliked
replies (a DPO pair, SFT and KTO rows), flags of its own reason and model (the queue, its filter menus,
the stats), reviews with a corrected reply (SFT and DPO correction rows). A deletion record names it,
and a rating and a flag of it are written *after* the deletion record (a replica that had not heard of
it yet). Every reader (the exports of every format from records and from a data dir, the review queue
with every filter and the stats by both engines, a review index catching up, a review desk, a dataset
repo read in place and its ``flagged`` view and card queries) must then give exactly what it gives for
the records without conversation C.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TOKEN
from huggingface_hub import HfApi, constants
from support.records import make_turn
from support.rules import EVERY_STATUS, RECORDS, TURNS, at, flag, rating, review, same_stats, sql_queue_and_stats

from feedback.errors import FeedbackError
from feedback.export import ExportOptions, export_data_dir, export_records, resolve_source
from feedback.export.run import summary
from feedback.features import RECORD_FEATURES
from feedback.hub.card import review_queries
from feedback.hub.compact import write_flagged
from feedback.hub.flagged import flagged_table
from feedback.hub.layout import FLAGGED
from feedback.hub.remote import HubRepo, HubSource
from feedback.hub.transfer import push_folder
from feedback.recorder import FeedbackRecorder
from feedback.review import ReviewDesk
from feedback.review.index import INDEX_NAME, ReviewIndex
from feedback.review.queue import QueueFilter, build_queue, filter_queue, queue_choices, queue_page
from feedback.review.sources import RecordsSource, ShardSource
from feedback.review.stats import compute_stats, index_stats
from feedback.rules import judge_records
from feedback.rules.records import _table
from feedback.store import FeedbackStore
from schemas.records import Deletion, Record, Turn

GONE = "conv-cccccccc"
GONE_MODEL = "m-gone"
GONE_REASON = "Spam"


def gone_turn(mid: str, minute: int, index: int = 0) -> Turn:
    return make_turn(
        GONE, mid, index=index, text="a secret prompt", response=f"secret {mid}", model=GONE_MODEL, timestamp=at(minute)
    )


GONE_TURNS = [gone_turn("gone-liked", 30), gone_turn("gone-disliked", 31), gone_turn("gone-flagged", 32, 1)]
GONE_BEFORE = [
    *GONE_TURNS,
    rating(GONE, "gone-liked", "like", 33),
    rating(GONE, "gone-disliked", "dislike", 34),
    rating(GONE, "gone-flagged", "dislike", 35),
    flag(GONE, "gone-flagged", 36, GONE_REASON, "Harmful", comment="secret comment"),
    review(GONE, "gone-flagged", "needs-fix", 37, fixed="a secret correction"),
]
DELETION = Deletion(conversation_id=GONE, requested_by="user", timestamp=at(40))
GONE_AFTER = [  # written after the deletion record, e.g. by a replica that had not heard of it yet
    rating(GONE, "gone-liked", "dislike", 41),
    flag(GONE, "gone-liked", 42, GONE_REASON),
    review(GONE, "gone-disliked", "confirmed", 43),
]
GONE_RECORDS = [*GONE_BEFORE, *GONE_AFTER]
WITH_DELETION: list[Record] = [*RECORDS, *GONE_BEFORE, DELETION, *GONE_AFTER]
"""The records of ``test_rules`` and conversation C, deleted in between its records."""
FORMATS = ("sft", "dpo", "kto", "flags")
VARIANTS = [{}, {"keep_flagged": True, "include_unrated": True}, {"cross_conversation": True}, {"messages": True}]


def by_kind(records: list[Record], kind: str) -> list[Record]:
    return [record for record in records if record.kind == kind]


def export_of(fmt: str, records: list[Record], **options: object):
    return export_records(
        fmt,
        *(by_kind(records, kind) for kind in ("turns", "ratings", "flags")),
        ExportOptions(include_ids=True, test_size=0.3, seed=1, **options),
        reviews=by_kind(records, "reviews"),
        deletions=by_kind(records, "deletions"),
    )


def without_deleted(stats: dict) -> dict:
    """Export stats with what only the deletion changes taken out: the reads (more records were read)
    and the ``deleted`` counts."""
    kept = {key: value for key, value in stats.items() if key not in ("records", "left_out")}
    kept["left_out"] = {reason: n for reason, n in stats["left_out"].items() if reason != "deleted"}
    kept["records"] = {
        kind: {
            name: n
            for name, n in counts.items()
            if name not in ("files", "bytes", "records", "deleted", "conversations")
        }
        for kind, counts in stats["records"].items()
        if kind != "deletions"
    }
    return kept


def test_the_fixture_would_be_in_every_reader_without_its_deletion():
    """The guard of every test below: without the deletion record, conversation C is everywhere."""
    records = [*RECORDS, *GONE_RECORDS]
    for fmt in FORMATS:
        assert any(GONE in str(row) for row in export_of(fmt, records).rows()), fmt
    assert any(GONE in str(row) for row in export_of("dpo", records, cross_conversation=True).rows())
    sft = export_of("sft", [*RECORDS, *GONE_BEFORE]).rows()
    assert any(row["completion"][0]["content"] == "a secret correction" for row in sft)
    assert GONE in {item.turn.conversation_id for item in build_queue(records)}
    assert GONE_MODEL in set(compute_stats(records).per_model.model)


class TestTheRulesEngine:
    def test_judge_drops_the_deleted_conversations_records_and_keeps_its_id(self):
        judged = judge_records(WITH_DELETION)
        verdicts = judged.verdicts
        assert verdicts.deleted == {GONE}
        assert {reply.turn.conversation_id for reply in judged.replies.values()} == {"conv-aaaaaaaa", "conv-bbbbbbbb"}
        assert verdicts.counts["ratings"]["deleted"] == 4 and verdicts.counts["flags"]["deleted"] == 2
        assert not any(key.startswith(GONE) for key in [*verdicts.ratings, *verdicts.flags, *verdicts.reviews])
        assert GONE not in verdicts.both_ratings

    def test_the_verdicts_are_those_of_the_records_without_the_conversation(self):
        judged, expected = judge_records(WITH_DELETION), judge_records(RECORDS)
        assert judged.replies == expected.replies
        assert judged.verdicts.ratings == expected.verdicts.ratings
        assert judged.verdicts.flags == expected.verdicts.flags
        assert {k: r.decision for k, r in judged.verdicts.reviews.items()} == {
            k: r.decision for k, r in expected.verdicts.reviews.items()
        }
        for kind in ("ratings", "flags"):
            assert {**judged.verdicts.counts[kind], "deleted": 0} == {**expected.verdicts.counts[kind], "deleted": 0}

    def test_a_deletion_record_written_first_or_last_deletes_the_same(self):
        first = judge_records([DELETION, *RECORDS, *GONE_RECORDS])
        last = judge_records([*RECORDS, *GONE_RECORDS, DELETION])
        assert first.replies == last.replies == judge_records(RECORDS).replies

    def test_the_replies_mask_marks_the_deleted_conversations_turns(self):
        judged = judge_records(WITH_DELETION)
        turns = [*TURNS, *GONE_TURNS]
        replies = judged.verdicts.replies(_table(turns, "turns", ["conversation_id", "message_id"]))
        assert replies.deleted.tolist() == [t.conversation_id == GONE for t in turns]
        assert not replies.flagged[replies.deleted].any() and not replies.rating[replies.deleted].any()

    def test_deleting_a_conversation_with_no_record_changes_nothing(self):
        stray = Deletion(conversation_id="conv-nobody00", requested_by="operator", timestamp=at(1))
        assert judge_records([*RECORDS, stray]).replies == judge_records(RECORDS).replies


class TestExports:
    @pytest.mark.parametrize("options", VARIANTS, ids=lambda o: ",".join(o) or "defaults")
    @pytest.mark.parametrize("fmt", FORMATS)
    def test_every_format_gives_the_rows_and_counts_it_gives_without_the_conversation(self, fmt, options):
        export, expected = export_of(fmt, WITH_DELETION, **options), export_of(fmt, RECORDS, **options)
        assert export.rows() == expected.rows()
        assert not any(GONE in str(row) or "secret" in str(row) for row in export.rows())
        assert without_deleted(export.stats) == without_deleted(expected.stats)

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_the_stats_name_deleted_as_the_first_reason(self, fmt):
        stats = export_of(fmt, WITH_DELETION).stats
        assert stats["left_out"]["deleted"] == len(GONE_TURNS)
        assert list(stats["left_out"])[0] == "deleted"
        records = stats["records"]
        assert records["turns"]["deleted"] == 3 and records["ratings"]["deleted"] == 4
        assert records["flags"]["deleted"] == 2
        assert records["deletions"]["records"] == 1 and records["deletions"]["conversations"] == 1

    def test_the_exports_summary_names_deleted(self):
        assert "left out: deleted 3" in summary(export_of("kto", WITH_DELETION))

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_a_data_dir_export_leaves_the_conversation_out(self, tmp_path, fmt):
        store = FeedbackStore(tmp_path / "data", shard_max_bytes=1500)  # many shards, the deletion among them
        for record in WITH_DELETION:
            store.append(record)
        store.close()
        options = ExportOptions(include_ids=True, test_size=0.3, seed=1)
        export = export_data_dir(fmt, tmp_path / "data", options)
        assert export.rows() == export_of(fmt, RECORDS).rows()
        assert export.stats["left_out"]["deleted"] == 3


def write(data_dir, records: list[Record]) -> None:
    store = FeedbackStore(data_dir, shard_max_bytes=1500)
    for record in records:
        store.append(record)
    store.close()


FILTERS = [
    EVERY_STATUS,
    QueueFilter(),
    QueueFilter(status="needs-fix"),
    QueueFilter(status="confirmed"),
    QueueFilter(status="dismissed"),
    QueueFilter(reason=GONE_REASON, status=None),
    QueueFilter(reason="Harmful", status=None),
    QueueFilter(model=GONE_MODEL, status=None),
    QueueFilter(model="m1", status=None),
    QueueFilter(since=date(2026, 4, 1), until=date(2026, 4, 1), status=None),
]


class TestQueueAndStats:
    @pytest.mark.parametrize("queue_filter", FILTERS)
    def test_every_filter_of_both_engines_gives_the_queue_without_the_conversation(self, tmp_path, queue_filter):
        expected = filter_queue(build_queue(RECORDS), queue_filter)
        assert filter_queue(build_queue(WITH_DELETION), queue_filter) == expected
        write(tmp_path, WITH_DELETION)
        for source, path in ((RecordsSource(WITH_DELETION), None), (ShardSource(tmp_path), tmp_path / INDEX_NAME)):
            page, _ = sql_queue_and_stats(source, path, queue_filter)
            assert page.items == expected and page.total == len(expected)

    def test_stats_and_filter_menus_of_both_engines_are_those_without_the_conversation(self):
        expected = compute_stats(RECORDS)
        same_stats(compute_stats(WITH_DELETION), expected)
        source = RecordsSource(WITH_DELETION)
        with ReviewIndex(source).connect() as con:
            same_stats(index_stats(con), expected)
            reasons, models = queue_choices(con)
        assert GONE_REASON not in reasons and GONE_MODEL not in models
        assert GONE_MODEL not in set(compute_stats(WITH_DELETION).per_model.model)

    def test_an_index_drops_the_conversation_when_the_deletion_arrives_and_ignores_later_records(self, tmp_path):
        source, store = ShardSource(tmp_path), FeedbackStore(tmp_path)
        index = ReviewIndex(source, tmp_path / INDEX_NAME)
        for record in [*RECORDS, *GONE_BEFORE]:
            store.append(record)
        with index.connect() as con:
            assert GONE in {i.turn.conversation_id for i in queue_page(con, source, EVERY_STATUS, limit=None).items}
        store.append(DELETION)
        with index.connect() as con:
            assert queue_page(con, source, EVERY_STATUS, limit=None).items == build_queue(RECORDS)
            same_stats(index_stats(con), compute_stats(RECORDS))
        for record in GONE_AFTER:
            store.append(record)
        with index.connect() as con:
            assert queue_page(con, source, EVERY_STATUS, limit=None).items == build_queue(RECORDS)
            same_stats(index_stats(con), compute_stats(RECORDS))
        store.close()

    def test_a_review_desk_neither_lists_nor_decides_on_a_deleted_reply(self, tmp_path):
        store = FeedbackStore(tmp_path)
        for record in WITH_DELETION:
            store.append(record)
        desk = ReviewDesk(FeedbackRecorder(store, flag_reasons=("Inaccurate", "Harmful")))
        assert desk.queue(EVERY_STATUS) == build_queue(RECORDS)
        reviews = len(by_kind(desk.records(), "reviews"))
        with pytest.raises(FeedbackError, match="not a flagged reply"):
            desk.decide("gone-flagged", "dismissed", reviewer="ann")
        assert len(by_kind(desk.records(), "reviews")) == reviews
        overview = desk.overview(EVERY_STATUS)
        assert GONE_MODEL not in overview.models and GONE_REASON not in overview.reasons
        store.close()


def test_a_repo_read_in_place_its_flagged_view_and_card_queries_leave_the_conversation_out(hub, tmp_path, monkeypatch):
    """The deletion record pushed, the conversation's records still in the repo (not erased yet)."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    repo_id = "test-user/deleting"
    write(tmp_path / "data", WITH_DELETION)
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    push_folder(tmp_path / "data", repo_id, api=api)
    files = hub.files(repo_id)
    assert any(path.startswith("deletions/") for path in files)
    assert any(b"secret" in data for path, data in files.items() if path.startswith("turns/"))

    repo = HubRepo(repo_id, api=api)
    repo.pin()
    source = HubSource(repo)
    with ReviewIndex(source).connect() as con:
        assert queue_page(con, source, EVERY_STATUS, limit=None).items == build_queue(RECORDS)
        same_stats(index_stats(con), compute_stats(RECORDS))

    remote = export_data_dir("sft", resolve_source(repo_id), ExportOptions(include_ids=True, test_size=0.3, seed=1))
    assert remote.rows() == export_of("sft", RECORDS).rows() and remote.stats["left_out"]["deleted"] == 3

    rows = write_flagged(HubRepo(repo_id, api=api))
    assert rows == len(build_queue(RECORDS))
    local = tmp_path / "repo"
    for path, data in hub.files(repo_id).items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_bytes(data)
    flagged = pq.read_table(local / FLAGGED).to_pylist()
    assert [(r["conversation_id"], r["message_id"], r["status"]) for r in flagged] == [
        (i.turn.conversation_id, i.message_id, i.status) for i in build_queue(RECORDS)
    ]

    con = duckdb.connect()
    answers = {
        title: con.execute(
            sql.replace(f"hf://datasets/{repo_id}", str(local))
            .replace("'MODEL NAME'", "'m1'")
            .replace("now()", "TIMESTAMP '2026-04-02 12:00'")
        ).fetchall()
        for title, sql in review_queries(repo_id)
    }
    by_reason = {reason: n for reason, n, _ in answers["Open flags by reason"]}
    assert by_reason == dict(
        Counter(r for item in filter_queue(build_queue(RECORDS), QueueFilter()) for r in item.reason_counts)
    )
    assert len(answers["A model's flagged replies this week (set the model's name)"]) == len(build_queue(RECORDS))


def test_the_card_queries_leave_out_rows_still_in_the_flagged_view_and_run_without_deletions(tmp_path):
    """Between the deletion record and the erasure commit, the ``flagged`` view may still hold the
    conversation (written by an earlier compaction): the card's queries leave it out; a repo with no
    ``deletions/`` folder at all runs them too."""

    def parquet(folder, kind: str, records: list[Record]) -> None:
        (folder / kind / "2026-04-01").mkdir(parents=True)
        table = pa.Table.from_pylist([r.model_dump() for r in records], schema=RECORD_FEATURES[kind].arrow_schema)
        pq.write_table(table, folder / kind / "2026-04-01" / "shard.parquet")

    def repo(folder, deletions: bool):
        (folder / FLAGGED).mkdir(parents=True)
        pq.write_table(flagged_table(build_queue([*RECORDS, *GONE_RECORDS])), folder / FLAGGED / "flagged-0.parquet")
        for kind in ("turns", "ratings"):
            parquet(folder, kind, by_kind([*RECORDS, *GONE_RECORDS], kind))
        if deletions:
            parquet(folder, "deletions", [DELETION])
        return folder

    def answers(folder):
        con = duckdb.connect()
        return {
            title: con.execute(
                sql.replace("hf://datasets/o/n", str(folder))
                .replace("'MODEL NAME'", f"'{GONE_MODEL}'")
                .replace("now()", "TIMESTAMP '2026-04-02 12:00'")
            ).fetchall()
            for title, sql in review_queries("o/n")
        }

    kept, deleted = answers(repo(tmp_path / "kept", False)), answers(repo(tmp_path / "deleted", True))
    flagged_title = "A model's flagged replies this week (set the model's name)"
    assert len(kept[flagged_title]) == 2 and deleted[flagged_title] == []
    assert GONE_REASON in {row[0] for row in kept["Open flags by reason"]}
    assert {row[0] for row in deleted["Open flags by reason"]} == {
        r for item in filter_queue(build_queue(RECORDS), QueueFilter()) for r in item.reason_counts
    }
    worst = "Prompts with the worst like rate (latest rating of each reply, at least 3 rated replies)"
    assert ("a secret prompt", 3, 0.0) in kept[worst]
    assert "a secret prompt" not in {row[0] for row in deleted[worst]}
