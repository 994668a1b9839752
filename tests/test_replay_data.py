"""Tests for feedback.replay_data (replay responder data) and the tests' sample data finder
(tests/support/sample_data.py)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from support import sample_data

from feedback.replay_data import (
    NoRecordedReply,
    PreferencePair,
    ReplayIndex,
    ReplayScript,
    SkipReason,
    load_pairs,
    parse_transcript,
)

HH_RLHF_PAIRS = 2312
HH_RLHF_REPLAYABLE = 2171


def transcript(*turns: str) -> str:
    """Build an hh-rlhf transcript alternating Human/Assistant, starting with Human."""
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {text}" for i, text in enumerate(turns))


def pair(index: int, *shared: str, rejected: str, chosen: str) -> PreferencePair:
    """A pair whose transcripts share ``shared`` (user, reply, ..., user) then differ."""
    return PreferencePair(
        index=index,
        chosen=tuple(parse_transcript(transcript(*shared, chosen))),
        rejected=tuple(parse_transcript(transcript(*shared, rejected))),
    )


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


# --- parse_transcript ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "\n\nHuman: Hi there\n\nAssistant: Hello!",
            [("user", "Hi there"), ("assistant", "Hello!")],
            id="normal",
        ),
        pytest.param(
            "\n\nHuman: Hi\n\nAssistant:",
            [("user", "Hi"), ("assistant", "")],
            id="empty-last-reply",
        ),
        pytest.param(
            "\n\nHuman: Hi\n\nAssistant: \n\nHuman: Still there?\n\nAssistant:  ",
            [("user", "Hi"), ("assistant", ""), ("user", "Still there?"), ("assistant", "")],
            id="empty-replies-mid-and-last",
        ),
        pytest.param(
            "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d\n\nHuman: e\n\nAssistant: f",
            [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d"), ("user", "e"), ("assistant", "f")],
            id="multi-turn",
        ),
        pytest.param(
            "\n\nHuman:  line one\nline two \n\n\n\nAssistant:\tOK\n\n",
            [("user", "line one\nline two"), ("assistant", "OK")],
            id="odd-whitespace",
        ),
        pytest.param(
            "\n\nHuman: q\n\nAssistant: Human: quoted  Assistant: too\nAssistant: x",
            [("user", "q"), ("assistant", "Human: quoted  Assistant: too\nAssistant: x")],
            id="inline-markers-are-content",
        ),
        pytest.param(
            "Human: no leading blank line\n\nAssistant: fine",
            [("user", "no leading blank line"), ("assistant", "fine")],
            id="marker-at-start",
        ),
        pytest.param(
            "\n\nHuman: a\n\nAssistant: b\n\nAssistant: c",
            [("user", "a"), ("assistant", "b"), ("assistant", "c")],
            id="non-alternating-is-parsed",
        ),
    ],
)
def test_parse_transcript(text: str, expected: list[tuple[str, str]]) -> None:
    assert parse_transcript(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   \n", "just some text", "Hello\n\nHuman: hi\n\nAssistant: yo", "\n\nUser: hi"],
)
def test_parse_transcript_rejects_non_transcripts(text: str) -> None:
    with pytest.raises(ValueError, match="not a transcript"):
        parse_transcript(text)


def test_parse_transcript_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_transcript(None)  # type: ignore[arg-type]


# --- load_pairs --------------------------------------------------------------------


def write_jsonl(path: Path, lines: list[str]) -> Path:
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.jsonl.gz"])
def test_load_pairs_plain_and_gzip(tmp_path: Path, name: str) -> None:
    rows = [
        {"chosen": transcript("hi", "hello"), "rejected": transcript("hi", "go away")},
        {"chosen": transcript("q", ""), "rejected": transcript("q", "a")},
    ]
    path = write_jsonl(tmp_path / name, [json.dumps(row) for row in rows[:1]] + [""] + [json.dumps(rows[1])])
    pairs = load_pairs(path)
    assert [p.index for p in pairs] == [0, 1]
    assert pairs[0].chosen == (("user", "hi"), ("assistant", "hello"))
    assert pairs[0].rejected[-1] == ("assistant", "go away")
    assert pairs[1].chosen[-1] == ("assistant", "")


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"chosen": transcript("a", "b")}), "missing 'rejected'"),
        (json.dumps({"chosen": "garbage", "rejected": transcript("a", "b")}), "'chosen'.*not a transcript"),
        (json.dumps({"chosen": transcript("a", "b"), "rejected": 3}), "'rejected'.*must be a string"),
    ],
)
def test_load_pairs_malformed_line_names_line_number(tmp_path: Path, bad_line: str, message: str) -> None:
    good = json.dumps({"chosen": transcript("a", "b"), "rejected": transcript("a", "c")})
    path = write_jsonl(tmp_path / "bad.jsonl", [good, good, bad_line])
    with pytest.raises(ValueError, match=rf"bad\.jsonl: line 3: {message}"):
        load_pairs(path)


# --- ReplayScript ------------------------------------------------------------------


def test_replay_script_messages_until() -> None:
    script = ReplayScript(pair_index=0, user_turns=("a", "c"), replies=("b",), rejected="r", chosen="d")
    assert script.messages_until(0) == [user("a")]
    assert script.messages_until(1) == [user("a"), assistant("b"), user("c")]
    with pytest.raises(IndexError):
        script.messages_until(2)


def test_replay_script_checks_lengths() -> None:
    with pytest.raises(ValueError, match="earlier replies"):
        ReplayScript(pair_index=0, user_turns=("a", "c"), replies=(), rejected="r", chosen="d")
    with pytest.raises(ValueError, match="at least one user turn"):
        ReplayScript(pair_index=0, user_turns=(), replies=(), rejected="r", chosen="d")


# --- replayability rules -----------------------------------------------------------


def non_alternating(index: int) -> PreferencePair:
    """A pair whose chosen has two assistant turns in a row."""
    turns = tuple(parse_transcript("\n\nHuman: x\n\nAssistant: y\n\nAssistant: z"))
    return PreferencePair(index=index, chosen=turns, rejected=turns[:2])


RULE_CASES = [
    pytest.param(
        [pair(0, "hi", rejected="r0", chosen="c0"), pair(1, "hi", rejected="r1", chosen="c1")],
        [0],
        {SkipReason.DIFFERENT_LAST_REPLIES: 1},
        id="same-single-question-different-replies",
    ),
    pytest.param(
        [
            pair(0, "hi", "hello", "more", rejected="r", chosen="c"),
            pair(1, "hi", "HEY", "more", rejected="r", chosen="c"),
        ],
        [0],
        {SkipReason.DIFFERENT_REPLY: 1},
        id="duplicate-opening-different-reply",
    ),
    pytest.param(
        [
            pair(0, "hi", "hello", "a", rejected="r", chosen="c"),
            pair(1, " hi ", "hello\n", "b", rejected="r", chosen="c"),
        ],
        [0, 1],
        {},
        id="same-opening-same-reply-whitespace-ignored",
    ),
    pytest.param(
        [pair(0, "hi", rejected="r", chosen="c"), pair(1, "hi", rejected="r", chosen="c")],
        [0, 1],
        {},
        id="exact-duplicate-pair",
    ),
    pytest.param(
        [non_alternating(0), pair(1, "x", rejected="r", chosen="c")],
        [1],
        {SkipReason.NOT_ALTERNATING: 1},
        id="non-alternating-skipped-and-registers-nothing",
    ),
    pytest.param(
        [pair(0, "hi", rejected="hello", chosen="c"), pair(1, "hi", "hello", "more", rejected="r", chosen="c")],
        [0],
        {SkipReason.EARLIER_ENDS_HERE: 1},
        id="last-turn-key-then-intermediate-key",
    ),
    pytest.param(
        [pair(0, "hi", "hello", "more", rejected="r", chosen="c"), pair(1, "hi", rejected="hello", chosen="hello")],
        [0],
        {SkipReason.EARLIER_CONTINUES: 1},
        id="intermediate-key-then-last-turn-key",
    ),
    pytest.param(
        [
            pair(0, "hi", "A", "q", rejected="r", chosen="c"),
            pair(1, "hi", "B", "q", rejected="r", chosen="c"),
            pair(2, "hi", "B", "q", rejected="r", chosen="c"),
        ],
        [0],
        {SkipReason.DIFFERENT_REPLY: 2},
        id="only-replayable-pairs-register-keys",
    ),
]


@pytest.mark.parametrize(("pairs", "replayable", "reasons"), RULE_CASES)
def test_replayability_rules(pairs: list[PreferencePair], replayable: list[int], reasons: dict) -> None:
    index = ReplayIndex.from_pairs(pairs)
    assert [s.pair_index for s in index.scripts] == replayable
    assert index.skip_reasons == reasons
    assert index.skipped == len(pairs) - len(replayable)
    assert index.n_pairs == len(pairs)


def test_rejected_structure_is_not_checked_but_must_end_with_a_reply() -> None:
    chosen = tuple(parse_transcript(transcript("q", "c")))
    odd_rejected = tuple(parse_transcript("\n\nHuman: other\n\nAssistant: x\n\nAssistant: r"))
    ends_with_user = tuple(parse_transcript(transcript("q", "x", "more")))
    index = ReplayIndex.from_pairs([PreferencePair(0, chosen, odd_rejected), PreferencePair(1, chosen, ends_with_user)])
    assert index.scripts == (ReplayScript(0, ("q",), (), rejected="r", chosen="c"),)
    assert index.skipped_pairs == {1: SkipReason.REJECTED_NO_REPLY}


# --- reply_for ---------------------------------------------------------------------


@pytest.fixture
def small_index() -> ReplayIndex:
    return ReplayIndex.from_pairs(
        [
            pair(0, "hi", "hello", "how are you?", rejected="meh", chosen="fine, thanks"),
            pair(1, "hi", "hello", "bye", rejected="", chosen="see you"),
        ]
    )


def test_reply_for_intermediate_turn(small_index: ReplayIndex) -> None:
    assert small_index.reply_for([user("hi")]) == "hello"
    assert small_index.reply_for([user("  hi\n")], regenerate=True) == "hello"


def test_reply_for_last_turn_rejected_then_chosen(small_index: ReplayIndex) -> None:
    last = {"role": "user", "content": "how are you?", "metadata": None}  # extra keys ignored
    messages = [user("hi"), assistant(" hello "), last]
    assert small_index.reply_for(messages) == "meh"
    assert small_index.reply_for(messages, regenerate=True) == "fine, thanks"


def test_reply_for_empty_recorded_reply(small_index: ReplayIndex) -> None:
    assert small_index.reply_for([user("hi"), assistant("hello"), user("bye")]) == ""
    assert small_index.reply_for([user("hi"), assistant("hello"), user("bye")], regenerate=True) == "see you"


@pytest.mark.parametrize(
    "messages",
    [
        [user("unknown")],
        [user("hi"), assistant("something else"), user("bye")],
        [user("hi"), assistant("hello"), user("bye"), assistant(""), user("again")],
        [assistant("hi"), assistant("hello"), user("bye")],
    ],
)
def test_reply_for_unknown_conversation(small_index: ReplayIndex, messages: list[dict]) -> None:
    with pytest.raises(NoRecordedReply, match="no recorded reply"):
        small_index.reply_for(messages)


@pytest.mark.parametrize(
    "messages",
    [[], [user("hi"), assistant("hello")], [{"role": "system", "content": "x"}, user("hi")], [user(None)]],
)
def test_reply_for_malformed_messages(small_index: ReplayIndex, messages: list[dict]) -> None:
    with pytest.raises(ValueError):
        small_index.reply_for(messages)


def test_no_recorded_reply_is_a_lookup_error() -> None:
    assert issubclass(NoRecordedReply, LookupError)


# --- the real hh-rlhf harmless-base test file -----------------------------------------


@pytest.fixture(scope="module")
def hh_rlhf_path() -> Path:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # never download in tests
        try:
            return sample_data.hh_rlhf_test_file()
        except FileNotFoundError as exc:
            pytest.skip(f"hh-rlhf sample data not available: {exc}")


@pytest.fixture(scope="module")
def hh_rlhf_index(hh_rlhf_path: Path) -> ReplayIndex:
    return ReplayIndex.from_file(hh_rlhf_path)


def test_hh_rlhf_counts(hh_rlhf_path: Path, hh_rlhf_index: ReplayIndex) -> None:
    assert len(load_pairs(hh_rlhf_path)) == HH_RLHF_PAIRS
    assert hh_rlhf_index.n_pairs == HH_RLHF_PAIRS
    assert len(hh_rlhf_index.scripts) == HH_RLHF_REPLAYABLE
    assert hh_rlhf_index.skip_reasons == {
        SkipReason.EARLIER_ENDS_HERE: 68,
        SkipReason.EARLIER_CONTINUES: 59,
        SkipReason.NOT_ALTERNATING: 8,
        SkipReason.DIFFERENT_REPLY: 4,
        SkipReason.DIFFERENT_LAST_REPLIES: 2,
    }
    assert sum(script.chosen == "" for script in hh_rlhf_index.scripts) == 4


def test_hh_rlhf_every_script_replays(hh_rlhf_index: ReplayIndex) -> None:
    for script in hh_rlhf_index.scripts:
        last = len(script.user_turns) - 1
        for turn in range(last):
            assert hh_rlhf_index.reply_for(script.messages_until(turn)) == script.replies[turn]
        messages = script.messages_until(last)
        assert hh_rlhf_index.reply_for(messages) == script.rejected, script.pair_index
        assert hh_rlhf_index.reply_for(messages, regenerate=True) == script.chosen, script.pair_index


# --- sample_data (no network: the download is monkeypatched) ---------------------------


def test_shared_data_dir_prefers_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sample_data.SHARED_DATA_ENV, str(tmp_path))
    assert sample_data.shared_data_dir() == tmp_path


def test_shared_data_dir_ignores_missing_env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sample_data.SHARED_DATA_ENV, str(tmp_path / "missing"))
    default = Path(sample_data.__file__).resolve().parents[3] / "shared" / "data"
    assert sample_data.shared_data_dir() == (default if default.is_dir() else None)


def test_missing_files_offline_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sample_data.SHARED_DATA_ENV, str(tmp_path))
    monkeypatch.setattr(sample_data, "_REPO_ROOT", tmp_path / "nowhere" / "repo")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        sample_data.hh_rlhf_test_file()
    with pytest.raises(FileNotFoundError, match="lm-sys/FastChat"):
        sample_data.fastchat_dummy_file()


def test_missing_hh_rlhf_downloads_when_online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    calls = []

    def fake_download(**kwargs: str) -> str:
        calls.append(kwargs)
        return str(tmp_path / "cached.jsonl.gz")

    monkeypatch.setenv(sample_data.SHARED_DATA_ENV, str(tmp_path))
    monkeypatch.setattr(sample_data, "_REPO_ROOT", tmp_path / "nowhere" / "repo")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert sample_data.hh_rlhf_test_file() == tmp_path / "cached.jsonl.gz"
    assert calls == [
        {"repo_id": "Anthropic/hh-rlhf", "filename": "harmless-base/test.jsonl.gz", "repo_type": "dataset"}
    ]


def test_fastchat_dummy_file_found() -> None:
    try:
        path = sample_data.fastchat_dummy_file()
    except FileNotFoundError as exc:
        pytest.skip(f"FastChat sample data not available: {exc}")
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), list)
