"""Exports: example logs per format, the data-dir path, filters, the split, stats and the CLI."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from support.export_log import (
    EXPECTED,
    SCENARIOS,
    T0,
    U1,
    Log,
    Q,
    compact,
    disliked_and_unrated,
    flagged_like,
    liked_reply,
    many_conversations,
    regenerated_reply,
    run_cli,
    undone_like,
)

from feedback.export import (
    ExportOptions,
    export_data_dir,
    export_records,
    in_test_split,
    rows_from_data_dir,
    sft_rows,
)
from feedback.features import RECORD_FEATURES, record_schema
from feedback.rules import QUALITY_REASONS
from feedback.store import FeedbackStore
from schemas.records import RECORD_TYPES, Rating


@pytest.mark.parametrize("fmt", ["sft", "dpo", "kto", "flags"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_example_logs_give_the_expected_rows(scenario, fmt):
    log = Log()
    SCENARIOS[scenario](log)
    rows = log.export(fmt).rows()
    assert [compact(fmt, row) for row in rows] == EXPECTED[scenario][fmt]


@pytest.mark.parametrize("fmt", ["sft", "dpo", "kto", "flags"])
def test_all_scenarios_together_give_the_union_of_their_rows(fmt):
    log = Log()
    for build in SCENARIOS.values():
        build(log)
    rows = [compact(fmt, row) for row in log.export(fmt).rows()]
    expected = [row for scenario in SCENARIOS for row in EXPECTED[scenario][fmt]]
    # identical rows (here: the same answer liked in several conversations) are kept once
    assert sorted(set(rows), key=repr) == sorted(set(expected), key=repr) and len(rows) == len(set(rows))


def test_include_unrated_adds_unrated_and_undone_replies_but_never_disliked_ones():
    log = Log()
    undone_like(log)
    disliked_and_unrated(log)
    rows = [compact("sft", row) for row in log.export("sft", include_unrated=True).rows()]
    second_turn = Q + (("assistant", "Lyon."), ("user", "Sure?"), ("assistant", "Yes."))
    assert rows == [Q + (("assistant", "Paris."),), second_turn]


def test_keep_flagged_keeps_flagged_replies_in_sft_and_kto():
    log = Log()
    flagged_like(log)
    assert len(log.export("sft", keep_flagged=True).rows()) == 1
    assert [row["label"] for row in log.export("kto", keep_flagged=True).rows()] == [True]


def test_flagged_reply_never_makes_a_pair_unless_kept():
    log = Log()
    regenerated_reply(log)
    log.flag(log.turns[0], "Harmful")
    assert log.export("dpo").rows() == []
    assert len(log.export("dpo", keep_flagged=True).rows()) == 1


def test_identical_prompts_pair_across_conversations_only_when_asked():
    log = Log()
    log.rate(log.turn("conversation-a", 0, U1, "Paris."), "like")
    log.rate(log.turn("conversation-b", 0, U1, "Nice."), "dislike")
    assert log.export("dpo").rows() == []
    rows = log.export("dpo", cross_conversation=True).rows()
    assert [compact("dpo", row) for row in rows] == [(Q, "Paris.", "Nice.")]


def test_every_liked_reply_pairs_with_every_disliked_reply_to_its_prompt():
    log = Log()
    first = log.turn("conv-many", 0, U1, "Lyon.")
    log.rate(first, "dislike")
    for text in ("Paris.", "It is Paris."):
        log.rate(log.turn("conv-many", 0, U1, text, regenerated_from=first.message_id), "like")
    pairs = sorted(compact("dpo", row)[1:] for row in log.export("dpo").rows())
    assert pairs == [("It is Paris.", "Lyon."), ("Paris.", "Lyon.")]


def test_same_text_liked_and_disliked_is_not_a_pair():
    log = Log()
    first = log.turn("conv-same", 0, U1, "Paris.")
    log.rate(first, "dislike")
    log.rate(log.turn("conv-same", 0, U1, "Paris.", regenerated_from=first.message_id), "like")
    export = log.export("dpo")
    assert export.rows() == [] and export.stats["rows_removed"]["identical_chosen_rejected"] == 1


def test_attached_files_appear_as_the_model_saw_them_and_are_counted():
    log = Log()
    turn = log.turn("conv-files", 0, [("user", "What is this?")], "A cat.", files=("files/abc.png",))
    log.rate(turn, "like")
    export = log.export("sft")
    (row,) = export.rows()
    assert row["prompt"][0] == turn.messages[0].to_openai()
    assert row["prompt"][0]["content"] == "What is this?\n\n[attached file: files/abc.png]"
    assert export.stats["prompts_with_files"] == 1 and export.stats["replies"]["with_files"] == 1


def test_model_and_date_filters_choose_replies_by_their_turn():
    log = Log()
    early = log.turn("conv-old", 0, U1, "Paris.", model="m1")
    late = log.turn("conv-new", 0, U1, "Paris!", model="m2")
    for turn in (early, late):
        log.rate(turn, "like")
    assert [r["completion"][0]["content"] for r in log.export("sft", models=("m2",)).rows()] == ["Paris!"]
    assert [r["completion"][0]["content"] for r in log.export("sft", since=late.timestamp).rows()] == ["Paris!"]
    assert [r["completion"][0]["content"] for r in log.export("sft", until=late.timestamp).rows()] == ["Paris."]
    stats = log.export("sft", models=("m2",)).stats
    assert stats["left_out"] == {"other_model": 1}


def test_pure_functions_take_dicts_as_well_as_records():
    log = Log()
    regenerated_reply(log)
    as_dicts = [record.model_dump(mode="json") for record in log.turns], [r.model_dump() for r in log.ratings]
    assert sft_rows(*as_dicts) == sft_rows(log.turns, log.ratings) == log.export("sft").rows()


def test_ids_are_added_when_asked():
    log = Log()
    regenerated_reply(log)
    (row,) = log.export("dpo", include_ids=True).rows()
    assert (row["chosen_id"], row["rejected_id"]) == (log.turns[1].message_id, log.turns[0].message_id)
    assert row["conversation_id"] == "conv-regen"


# -- a data dir: shards, replicas, duplicates, torn lines --------------------------------------


@pytest.mark.parametrize("fmt", ["sft", "dpo", "kto", "flags"])
def test_a_data_dir_exports_the_same_rows_as_its_records(tmp_path, fmt):
    log = Log()
    for build in SCENARIOS.values():
        build(log)
    many_conversations(log)
    data_dir = log.write(tmp_path / "data")
    options = ExportOptions(test_size=0.3, seed=7, include_ids=True)
    from_dir = export_data_dir(fmt, data_dir, options)
    from_records = export_records(fmt, log.turns, log.ratings, log.flags, options)
    for split in ("train", "test"):
        assert from_dir.rows(split) == from_records.rows(split)
    assert from_dir.stats["rows"] == from_records.stats["rows"]


def test_two_replicas_shards_of_one_conversation_make_one_pair(tmp_path):
    log = Log()
    regenerated_reply(log)
    first_replica, second_replica = FeedbackStore(tmp_path), FeedbackStore(tmp_path)
    first_replica.append(log.turns[0])
    second_replica.append(log.turns[1])
    second_replica.append(log.ratings[0])
    first_replica.append(log.ratings[1])
    for store in (first_replica, second_replica):
        store.close()
    assert len(list((tmp_path / "turns").glob("*.jsonl"))) == 2
    rows = rows_from_data_dir("dpo", tmp_path)
    assert [compact("dpo", row) for row in rows] == [(Q, "Paris.", "Lyon.")]


def test_a_shard_synced_twice_counts_once(tmp_path):
    log = Log()
    for build in SCENARIOS.values():
        build(log)
    data_dir = log.write(tmp_path / "data")
    before = {fmt: export_data_dir(fmt, data_dir).rows() for fmt in ("sft", "dpo", "kto", "flags")}
    for kind in RECORD_TYPES:
        for shard in list((data_dir / kind).glob("*.jsonl")):
            shutil.copy(shard, shard.with_name("copy-" + shard.name))
    for fmt, rows in before.items():
        export = export_data_dir(fmt, data_dir)
        assert export.rows() == rows
    records = export.stats["records"]
    assert records["turns"]["duplicates"] == len(log.turns)
    assert records["ratings"]["duplicates"] == len(log.ratings)
    assert records["flags"]["duplicates"] == len(log.flags)


def test_torn_and_invalid_lines_are_skipped_and_counted(tmp_path):
    log = Log()
    regenerated_reply(log)
    data_dir = log.write(tmp_path / "data")
    (shard,) = (data_dir / "turns").glob("*.jsonl")
    lines = shard.read_bytes().splitlines(keepends=True)
    torn = b'{"schema_version": 1, "times'
    shard.write_bytes(lines[0] + b"not json\n" + b'{"conversation_id": 5}\n' + lines[1] + torn)
    (ratings,) = (data_dir / "ratings").glob("*.jsonl")
    ratings.write_bytes(ratings.read_bytes() + b'{"conversation_id": "conv-regen", "rating": "superb"}\n')
    export = export_data_dir("dpo", data_dir)
    assert [compact("dpo", row) for row in export.rows()] == [(Q, "Paris.", "Lyon.")]
    assert export.stats["records"]["turns"]["bad_lines"] == 3
    assert export.stats["records"]["ratings"]["incomplete"] == 1


def test_a_shard_with_a_few_bad_lines_keeps_every_good_line_in_order():
    from feedback.export.read import parse_jsonl
    from feedback.rules import RATING_COLUMNS

    good = [
        json.dumps(
            {"conversation_id": f"c{i}", "message_id": f"m{i}", "timestamp": "2026-01-01T00:00:00Z", "rating": "like"}
        ).encode()
        for i in range(1000)
    ]
    lines = [b"not json", *good[:500], b"", b'{"conversation_id": ', *good[500:], b"[1, 2]"]
    table, counts = parse_jsonl(b"\n".join(lines) + b"\n", record_schema("ratings", RATING_COLUMNS))
    assert table.column("message_id").to_pylist() == [f"m{i}" for i in range(1000)]
    assert (counts.records, counts.bad_lines) == (1000, 3)


def test_columns_null_in_one_shard_and_set_in_another_load(tmp_path):
    log = Log()
    liked_reply(log)
    data_dir = log.write(tmp_path / "data")
    other = Log(clock=100)
    turn = other.turn("conv-other", 0, U1, "Paris!", files=("files/x.png",))
    other.rate(turn, "like", option="Other", comment="fine")
    other.write(data_dir)  # a second writer: option/comment/files set only in its shards
    assert len(export_data_dir("sft", data_dir).rows()) == 2


def test_an_empty_data_dir_exports_no_rows(tmp_path):
    FeedbackStore(tmp_path)
    for fmt in ("sft", "dpo", "kto", "flags"):
        export = export_data_dir(fmt, tmp_path)
        assert export.rows() == [] and export.stats["rows"] == {"train": 0, "test": 0}


# -- split ----------------------------------------------------------------------------------


def test_split_is_by_conversation_deterministic_and_the_same_in_every_format():
    log = Log()
    many_conversations(log, 200)
    split_of = {}
    for fmt in ("sft", "kto", "dpo"):
        export = export_records(
            fmt, log.turns, log.ratings, log.flags, ExportOptions(test_size=0.25, seed=3, include_ids=True)
        )
        train = {row["conversation_id"] for row in export.rows("train")}
        test = {row["conversation_id"] for row in export.rows("test")}
        assert train and test and not train & test
        for split, conversations in (("train", train), ("test", test)):
            for conversation in conversations:
                assert split_of.setdefault(conversation, split) == split
    share = sum(split == "test" for split in split_of.values()) / len(split_of)
    assert 0.1 < share < 0.4
    assert all((split == "test") == in_test_split(c, test_size=0.25, seed=3) for c, split in split_of.items())
    assert any(in_test_split(c, test_size=0.25, seed=4) != (s == "test") for c, s in split_of.items())


def test_test_size_zero_puts_everything_in_train():
    log = Log()
    many_conversations(log, 20)
    export = export_records("kto", log.turns, log.ratings, log.flags, ExportOptions(test_size=0))
    assert export.stats["rows"] == {"train": len(log.turns) - len(log.flags), "test": 0}


# -- stats ----------------------------------------------------------------------------------


def test_stats_count_what_was_left_out_and_why():
    log = Log()
    for build in SCENARIOS.values():
        build(log)
    stats = log.export("sft").stats
    assert stats["records"]["ratings"]["undone"] == 1
    assert stats["left_out"] == {"flagged": 1, "disliked": 4, "unrated": 2}
    assert stats["rows_removed"]["duplicate"] == 3  # "Paris." liked in several conversations
    kto = log.export("kto", test_size=0).stats
    assert kto["balance"]["train"]["liked"] + kto["balance"]["train"]["disliked"] == kto["rows"]["train"]


# -- features -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(RECORD_TYPES))
def test_record_features_name_every_field_of_the_record_model(kind):
    assert list(RECORD_FEATURES[kind]) == list(RECORD_TYPES[kind].model_fields)
    assert record_schema(kind).names == list(RECORD_TYPES[kind].model_fields)


# -- the command line -----------------------------------------------------------------------


def test_cli_writes_train_test_and_stats(tmp_path, capsys):
    log = Log()
    for build in SCENARIOS.values():
        build(log)
    many_conversations(log)
    data_dir = log.write(tmp_path / "data")
    out = tmp_path / "out"
    assert run_cli("kto", "--source", str(data_dir), "--out", str(out), "--test-size", "0.2", "--no-progress") == 0
    stats = json.loads((out / "stats.json").read_text())
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    assert (len(train), len(test)) == (stats["rows"]["train"], stats["rows"]["test"]) and test
    expected = export_data_dir("kto", data_dir, ExportOptions(test_size=0.2))
    assert train == expected.rows("train") and test == expected.rows("test")
    assert stats["source"] == str(data_dir) and "balance" in stats
    printed = capsys.readouterr().out
    assert "kto:" in printed and "train rows" in printed and "balance" in printed


def test_cli_refuses_an_unknown_source(tmp_path, capsys):
    assert run_cli("sft", "--source", "not a dir or repo", "--out", str(tmp_path / "out")) == 2
    assert "neither a data dir nor a Hub dataset repo id" in capsys.readouterr().err


def test_cli_until_a_date_includes_that_whole_day(tmp_path):
    log = Log()
    liked_reply(log)
    data_dir = log.write(tmp_path / "data")
    day = T0.date().isoformat()
    assert (
        run_cli("sft", "--source", str(data_dir), "--out", str(tmp_path / "a"), "--until", day, "--test-size", "0") == 0
    )
    assert len((tmp_path / "a" / "train.jsonl").read_text().splitlines()) == 1
    assert (
        run_cli(
            "sft",
            "--source",
            str(data_dir),
            "--out",
            str(tmp_path / "b"),
            "--since",
            (T0.date() + timedelta(days=1)).isoformat(),
        )
        == 0
    )
    assert not (tmp_path / "b" / "train.jsonl").exists()  # no rows: no file (an empty one cannot be loaded)


# -- a synthetic log against a plain-Python reference ----------------------------------------


def _generated_log(tmp_path: Path, turns: int = 3000, shard_bytes: int | None = None) -> Path:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "bench" / "bench_export.py"
    spec = importlib.util.spec_from_file_location("bench_export", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    if shard_bytes is not None:
        bench.SHARD_BYTES = shard_bytes
    bench.generate(tmp_path / "data", turns=turns, ratings=turns, flags=turns // 10, seed=1)
    return tmp_path / "data"


def reference_rows(fmt: str, store: FeedbackStore) -> set:
    """What each format should hold, computed record by record from validated records."""
    latest: dict[tuple, tuple] = {}
    for rating in store.iter_records("ratings"):
        key = (rating.conversation_id, rating.message_id)
        if key not in latest or rating.timestamp >= latest[key][0]:
            latest[key] = (rating.timestamp, rating.rating)
    reasons: dict[tuple, set] = {}
    for flag in store.iter_records("flags"):
        reasons.setdefault((flag.conversation_id, flag.message_id), set()).update(flag.reasons)
    replies = []
    for turn in store.iter_records("turns"):
        key = (turn.conversation_id, turn.message_id)
        prompt = tuple((m.to_openai()["role"], m.to_openai()["content"]) for m in turn.messages)
        rating = latest.get(key, (None, None))[1]
        # a disliked reply flagged only for quality reasons stays a negative of dpo and kto
        quality_negative = fmt != "sft" and rating == "dislike" and reasons.get(key, set()) <= set(QUALITY_REASONS)
        if (key not in reasons or quality_negative) and rating:
            replies.append((turn.conversation_id, prompt, turn.response, rating == "like"))
    if fmt == "sft":
        return {prompt + (("assistant", response),) for _, prompt, response, liked in replies if liked}
    if fmt == "kto":
        return {(prompt, response, liked) for _, prompt, response, liked in replies}
    by_prompt: dict[tuple, list] = {}
    for conversation, prompt, response, liked in replies:
        by_prompt.setdefault((conversation, prompt), []).append((response, liked))
    return {
        (prompt, good, bad)
        for (_, prompt), answers in by_prompt.items()
        for good, liked in answers
        if liked
        for bad, disliked in answers
        if not disliked and good != bad
    }


@pytest.mark.parametrize("fmt", ["sft", "kto", "dpo"])
def test_a_generated_log_matches_a_record_by_record_reference(tmp_path, fmt):
    data_dir = _generated_log(tmp_path)
    rows = {compact(fmt, row) for row in rows_from_data_dir(fmt, data_dir)}
    assert rows == reference_rows(fmt, FeedbackStore(data_dir))
    assert len(rows) > 50


def test_a_rating_naming_a_reply_of_another_conversation_does_not_count():
    log = Log()
    turn = log.turn("conv-owner", 0, U1, "Paris.")
    log.ratings.append(
        Rating(conversation_id="conv-intruder", message_id=turn.message_id, rating="like", timestamp=log.now())
    )
    export = log.export("sft", include_ids=True)
    assert export.rows() == [] and export.stats["records"]["ratings"]["unknown_reply"] == 1


@pytest.mark.parametrize("fmt", ["sft", "kto", "dpo"])
def test_rows_of_many_shards_come_in_log_order(tmp_path, fmt):
    """DuckDB reads many shards in parallel: the rows must still come in log order (shards by name, lines in
    order), each row where its reply (a pair: its later reply) first appears."""
    data_dir = _generated_log(tmp_path, turns=20_000, shard_bytes=1_000_000)
    assert len(list((data_dir / "turns").glob("*.jsonl"))) > 20
    first_seen: dict[str, int] = {}
    for turn in FeedbackStore(data_dir).iter_records("turns"):
        first_seen.setdefault(turn.message_id, len(first_seen))
    export = export_data_dir(fmt, data_dir, ExportOptions(test_size=0, include_ids=True))
    ids = ("chosen_id", "rejected_id") if fmt == "dpo" else ("message_id",)
    places = [max(first_seen[row[name]] for name in ids) for row in export.rows()]
    assert len(places) > 300 and places == sorted(places)
