"""Real chat data through the running app: ``python -m feedback replay`` on hh-rlhf harmless-base."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from conftest import launch, read_records

from feedback.replay_data import ReplayIndex

REPO = Path(__file__).resolve().parent.parent


def replay_and_check(tmp_path: Path, hh_file: Path, limit: int | None) -> dict[str, str]:
    """Start the app on ``hh_file``, replay ``limit`` pairs with the CLI, check every record."""
    from feedback.app import build_app
    from schemas.settings import Settings

    data_dir = tmp_path / "data"
    demo = build_app(Settings(data_dir=data_dir, responder="replay", replay_file=hh_file))
    url = launch(demo)
    try:
        command = [sys.executable, "-m", "feedback", "replay", str(hh_file), "--url", url, "--concurrency", "4"]
        command += ["--limit", str(limit)] if limit is not None else []
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3000)
    finally:
        demo.close()
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    summary = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)

    index = ReplayIndex.from_file(hh_file)
    scripts = index.scripts[:limit] if limit is not None else index.scripts
    check_records(data_dir, scripts)
    check_exports(data_dir, scripts)
    assert summary["conversations"] == f"{len(scripts):,}"
    assert summary["errors"] == "0"
    assert summary["skipped"].startswith(f"{index.skipped:,}")
    return summary


def check_records(data_dir: Path, scripts) -> None:  # noqa: ANN001 - a sequence of ReplayScript
    turns = read_records(data_dir, "turns")
    ratings = read_records(data_dir, "ratings")
    by_conversation: dict[str, list[dict]] = defaultdict(list)
    for turn in turns:
        by_conversation[turn["conversation_id"]].append(turn)
    assert len(by_conversation) == len(scripts)

    expected = Counter()
    for script in scripts:
        expected[(script.user_turns, (*script.replies, script.rejected), script.chosen)] += 1
    seen = Counter()
    for conversation in by_conversation.values():
        conversation.sort(key=lambda t: t["timestamp"])
        *first_pass, regenerated = conversation
        assert [t["turn_index"] for t in first_pass] == list(range(len(first_pass)))
        assert regenerated["regenerated_from"] == first_pass[-1]["message_id"]
        assert regenerated["turn_index"] == first_pass[-1]["turn_index"]
        users = tuple(t["messages"][-1]["content"] for t in first_pass)
        seen[(users, tuple(t["response"] for t in first_pass), regenerated["response"])] += 1
        # every prompt is the conversation so far as recorded
        for turn in first_pass[1:]:
            assert len(turn["messages"]) == 2 * turn["turn_index"] + 1
    assert seen == expected

    per_conversation = defaultdict(list)
    for rating in ratings:
        per_conversation[rating["conversation_id"]].append(rating["rating"])
    assert len(per_conversation) == len(scripts)
    assert all(sorted(values) == ["dislike", "like"] for values in per_conversation.values())


def check_exports(data_dir: Path, scripts) -> None:  # noqa: ANN001 - a sequence of ReplayScript
    """The replayed log exported as DPO reproduces every pair; KTO gives one true and one false row per pair."""
    from feedback.export import rows_from_data_dir

    def prompt_of(script) -> tuple:  # noqa: ANN001
        messages = []
        for i, text in enumerate(script.user_turns):
            messages.append(("user", text))
            if i < len(script.replies):
                messages.append(("assistant", script.replies[i]))
        return tuple(messages)

    def key(prompt: list[dict]) -> tuple:
        return tuple((m["role"], m["content"]) for m in prompt)

    expected = Counter((prompt_of(s), s.chosen, s.rejected) for s in scripts)
    dpo = rows_from_data_dir("dpo", data_dir, test_size=0.0)
    got = Counter((key(r["prompt"]), r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in dpo)
    assert len(dpo) == len(scripts) and got == expected
    kto = rows_from_data_dir("kto", data_dir, test_size=0.0)
    labels = Counter((key(r["prompt"]), r["completion"][0]["content"], r["label"]) for r in kto)
    assert len(kto) == 2 * len(scripts)
    assert labels == Counter({(p, c, True): n for (p, c, _), n in expected.items()}) + Counter(
        {(p, r, False): n for (p, _, r), n in expected.items()}
    )


def test_replay_of_300_pairs_through_the_running_app(tmp_path, hh_rlhf_file):
    summary = replay_and_check(tmp_path, hh_rlhf_file, limit=300)
    assert summary["ratings"] == "600"


@pytest.mark.slow
def test_full_replay_of_the_harmless_base_test_file(tmp_path, hh_rlhf_file):
    summary = replay_and_check(tmp_path, hh_rlhf_file, limit=None)
    assert summary["conversations"] == "2,171"
    print("\n".join(f"{k}: {v}" for k, v in summary.items()))
