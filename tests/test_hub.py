"""The Hub package's seams: one token look-up, one repo-id check, a timeout on every command's Hub
calls, and a dataset repo read as a source without writing to the current directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TOKEN, free_port, hub_env
from faultproxy import FaultProxy
from huggingface_hub import HfApi, constants
from support.hub import HubServer
from support.records import make_turn

from feedback.hub.client import failure_reason, hub_timeout, hub_token, is_repo_id
from feedback.hub.transfer import push_folder
from feedback.redaction import forget_secrets, redact_secrets
from feedback.store import FeedbackStore
from schemas.records import Flag, Rating

REPO = Path(__file__).resolve().parent.parent
LOGS = "test-user/reviewable"
DEAD_HUB_BOUND = 30.0
"""A command against a Hub that never answers must give up within this many seconds (timeout 1 s)."""


@pytest.fixture
def no_secrets() -> Iterator[None]:
    """Registered secrets are process-wide: forget the ones a test registers."""
    try:
        yield
    finally:
        forget_secrets()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice/chat-logs", True),
        ("a/b", True),
        ("Org.Name/data_set-1.0", True),
        ("alice/chat-logs\n", False),  # "$" alone would accept a trailing newline
        ("alice", False),
        ("alice/chat/logs", False),
        ("./data", False),
        ("-alice/logs", False),
        (None, False),
    ],
)
def test_a_repo_id_is_owner_slash_name_and_nothing_more(value, expected):
    assert is_repo_id(value) is expected


def test_the_token_comes_from_the_caller_then_hf_token_then_the_saved_login(tmp_path, monkeypatch, no_secrets):
    saved = tmp_path / "token"
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(saved))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    assert hub_token() is None
    saved.write_text("hf_savedLoginToken0123456789")
    assert hub_token() == "hf_savedLoginToken0123456789"
    monkeypatch.setenv("HF_TOKEN", "hf_environmentToken0123456789")
    assert hub_token() == "hf_environmentToken0123456789"
    assert hub_token("explicit-token-value") == "explicit-token-value"
    # every token handed out is kept out of logs and printed errors
    error = RuntimeError("401 for token explicit-token-value\n  at https://hub")
    assert failure_reason(error) == "401 for token *** at https://hub"
    assert "explicit-token-value" not in redact_secrets("sent explicit-token-value")
    assert failure_reason(RuntimeError()) == "RuntimeError"


def test_the_timeout_comes_from_the_caller_then_feedback_hub_timeout(monkeypatch):
    monkeypatch.delenv("FEEDBACK_HUB_TIMEOUT", raising=False)
    assert hub_timeout() == 30.0
    monkeypatch.setenv("FEEDBACK_HUB_TIMEOUT", "2.5")
    assert hub_timeout() == 2.5 and hub_timeout(7) == 7.0
    for bad in ("0", "601", "inf", "soon"):
        monkeypatch.setenv("FEEDBACK_HUB_TIMEOUT", bad)
        with pytest.raises(ValueError, match="FEEDBACK_HUB_TIMEOUT must be seconds from 0.1 to 600"):
            hub_timeout()
    with pytest.raises(ValueError, match="the timeout must be"):
        hub_timeout(-1)


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m feedback ARGS`` in ``cwd`` (the project is found through ``PYTHONPATH``)."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "feedback", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def seed(data_dir: Path) -> Path:
    """One conversation: a liked turn, and a disliked and flagged turn."""
    store = FeedbackStore(data_dir)
    for i, rating in enumerate(("like", "dislike")):
        turn = make_turn(
            "conv-hub-0001", f"msg-hub-000{i}", index=i, text=f"question {i}", response=f"answer {i}", model="m1"
        )
        store.append(turn)
        store.append(Rating(conversation_id=turn.conversation_id, message_id=turn.message_id, rating=rating))
    store.append(Flag(conversation_id="conv-hub-0001", message_id="msg-hub-0001", reasons=["Inaccurate"]))
    store.close()
    return data_dir


@pytest.fixture
def pushed(hub: HubServer, tmp_path: Path) -> str:
    """The seeded data dir pushed to ``LOGS`` on the test Hub."""
    push_folder(seed(tmp_path / "data"), LOGS, token=TOKEN, api=HfApi(endpoint=hub.endpoint, token=TOKEN))
    return LOGS


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """An empty folder to run commands in: it must stay empty."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def test_stats_and_export_read_a_repo_in_place_not_into_the_current_directory(hub, pushed, tmp_path, cwd):
    env = hub_env(hub, tmp_path)
    stats = run_cli(["stats", "--source", pushed], env, cwd)
    assert stats.returncode == 0, stats.stderr[-2000:]
    assert "Open review queue: 1" in stats.stdout
    export = run_cli(["export", "kto", "--source", pushed, "--out", str(tmp_path / "out"), "--no-progress"], env, cwd)
    assert export.returncode == 0, export.stderr[-2000:]
    assert (tmp_path / "out" / "train.jsonl").is_file()
    assert list(cwd.iterdir()) == []
    # read in place through HfFileSystem: nothing of the repo downloaded into the Hugging Face cache
    assert not (tmp_path / "hf-home" / "hub" / f"datasets--{pushed.replace('/', '--')}").exists()
    assert TOKEN not in stats.stdout + stats.stderr + export.stdout + export.stderr


def test_review_of_a_repo_reads_it_in_place_writes_decisions_beside_the_hf_cache_and_says_how_to_push_them(
    hub, pushed, tmp_path, cwd
):
    env = {**os.environ, **hub_env(hub, tmp_path), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "feedback", "review", "--source", pushed, "--port", str(free_port())]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("push them with"):
                break
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
    output = "".join(lines)
    copy = (tmp_path / "hf-home" / "chat-feedback-review" / "test-user__reviewable").resolve()
    assert f"reviewing {pushed} as " in output and f"decisions go to {copy / 'reviews'}" in output, output[-3000:]
    assert f"push them with: python -m feedback push {copy} --repo {pushed}" in output
    assert list((copy / "turns").glob("*")) == []  # the repo is read in place, not pulled
    assert list(cwd.iterdir()) == []
    assert TOKEN not in output


@pytest.fixture
def dead_hub(hub: HubServer) -> Iterator[FaultProxy]:
    """The test Hub behind a proxy that accepts connections and never answers."""
    proxy = FaultProxy(("127.0.0.1", hub.port), mode="dead").start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    ("args", "timeout_env", "failure"),
    [
        (["push", "{data}", "--repo", LOGS, "--timeout", "1"], None, "push failed: "),
        (["pull", LOGS, "{pulled}", "--timeout", "1"], None, "pull failed: "),
        (["export", "sft", "--source", LOGS, "--out", "{out}", "--no-progress"], "1", "error: SOURCE"),
        (
            [
                "export",
                "sft",
                "--source",
                "{data}",
                "--out",
                "{out}",
                "--no-progress",
                "--push-to-hub",
                "test-user/sft",
            ],
            "1",
            "Timeout",
        ),
    ],
    ids=["push", "pull", "export-source", "export-push"],
)
def test_every_command_gives_up_on_a_hub_that_never_answers(hub, dead_hub, tmp_path, cwd, args, timeout_env, failure):
    seed(tmp_path / "data")
    paths = {"data": str(tmp_path / "data"), "pulled": str(tmp_path / "pulled"), "out": str(tmp_path / "out")}
    env = {**hub_env(hub, tmp_path), "HF_ENDPOINT": dead_hub.endpoint}
    if timeout_env:
        env["FEEDBACK_HUB_TIMEOUT"] = timeout_env
    started = time.monotonic()
    result = run_cli([arg.format(**paths) for arg in args], env, cwd, timeout=120)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0 and failure in output, output[-3000:]
    assert elapsed < DEAD_HUB_BOUND, f"{args[0]} took {elapsed:.1f} s against a dead Hub"
    assert dead_hub.swallowed >= 1  # it did reach the (dead) Hub
    assert TOKEN not in output


def test_a_bad_timeout_option_is_refused_by_the_parser(tmp_path, cwd):
    result = run_cli(["push", str(tmp_path), "--repo", LOGS, "--timeout", "0"], {}, cwd, timeout=60)
    assert result.returncode == 2 and "the timeout must be seconds from 0.1 to 600" in result.stderr
