"""``python -m feedback replay FILE --url URL``: drive a running app with recorded conversations.

One conversation per replayable pair of an hh-rlhf style file, through ``gradio_client`` exactly as
a custom front end would: each human turn sent with ``/chat``, the last reply disliked,
regenerated with ``/regenerate``, and the regeneration liked. Start the app with the ``replay``
responder on the same FILE so the replies match the recording; each reply is checked.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from gradio_client import Client
from loguru import logger
from tqdm import tqdm

from feedback.replay_data import ReplayIndex, ReplayScript


@dataclass
class ReplaySummary:
    """What a replay did. ``turns`` counts replies logged (``/chat`` and ``/regenerate``)."""

    conversations: int = 0
    turns: int = 0
    ratings: int = 0
    skipped: int = 0
    errors: int = 0
    seconds: float = 0.0
    error_samples: list[str] = field(default_factory=list)

    @property
    def turns_per_second(self) -> float:
        return self.turns / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        """The printed summary, one ``name: value`` per line."""
        return [
            f"conversations: {self.conversations:,}",
            f"turns: {self.turns:,}",
            f"ratings: {self.ratings:,}",
            f"skipped: {self.skipped:,} (pairs that are not replayable)",
            f"errors: {self.errors:,}",
            f"seconds: {self.seconds:.1f}",
            f"turns/s: {self.turns_per_second:.1f}",
        ]


class ReplayDriver:
    """Replays scripts against the app at ``url`` with ``concurrency`` client threads.

    Args:
        url: the running app's URL.
        concurrency: conversations in flight at once (one ``gradio_client.Client`` per thread).
    """

    def __init__(self, url: str, *, concurrency: int = 4) -> None:
        if concurrency < 1:
            raise ValueError(f"'concurrency' must be at least 1, not {concurrency!r}")
        self.url = url
        self.concurrency = concurrency
        self._local = threading.local()

    def _client(self) -> Client:
        if not hasattr(self._local, "client"):
            self._local.client = Client(self.url, verbose=False)
        return self._local.client

    def run(self, scripts: list[ReplayScript], *, progress: bool = True) -> ReplaySummary:
        """Replay every script; returns the counts. Errors are counted, not raised."""
        summary = ReplaySummary()
        started = time.perf_counter()
        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = [pool.submit(self.replay_one, script) for script in scripts]
            for future in tqdm(as_completed(futures), total=len(futures), disable=not progress, unit="conv"):
                error = future.exception()
                if error is None:
                    turns, ratings = future.result()
                    summary.conversations += 1
                    summary.turns += turns
                    summary.ratings += ratings
                else:
                    summary.errors += 1
                    if len(summary.error_samples) < 5:
                        summary.error_samples.append(str(error))
        summary.seconds = time.perf_counter() - started
        return summary

    def replay_one(self, script: ReplayScript) -> tuple[int, int]:
        """Replay one conversation; returns ``(turns, ratings)``.

        Raises:
            ReplayMismatch: when a reply differs from the recording.
            gradio_client.exceptions.AppError: when the app refuses a request.
        """
        client, conversation_id, reply = self._client(), "", {}
        expected = [*script.replies, script.rejected]
        for text, want in zip(script.user_turns, expected, strict=True):
            reply = client.predict({"text": text, "files": []}, conversation_id, api_name="/chat")
            conversation_id = reply["conversation_id"]
            _check(script, reply["response"], want)
        client.predict(conversation_id, reply["message_id"], "dislike", api_name="/rate")
        again = client.predict(conversation_id, reply["message_id"], api_name="/regenerate")
        _check(script, again["response"], script.chosen)
        client.predict(conversation_id, again["message_id"], "like", api_name="/rate")
        return len(script.user_turns) + 1, 2


class ReplayMismatch(AssertionError):
    """The app answered something other than the recorded reply."""


def _check(script: ReplayScript, got: str, want: str) -> None:
    if got.strip() != want.strip():
        raise ReplayMismatch(f"pair {script.pair_index}: expected {want[:60]!r}, got {got[:60]!r}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``replay`` command."""
    parser = subparsers.add_parser("replay", help="drive a running app with recorded conversations")
    parser.add_argument("file", type=Path, help="hh-rlhf style .jsonl or .jsonl.gz (the app's FEEDBACK_REPLAY_FILE)")
    parser.add_argument("--url", required=True, help="the running app, e.g. http://127.0.0.1:7860")
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N replayable pairs")
    parser.add_argument("--concurrency", type=int, default=4, help="conversations in flight at once (default 4)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``replay`` command; exit code 1 when any conversation failed."""
    index = ReplayIndex.from_file(args.file)
    scripts = list(index.scripts[: args.limit] if args.limit is not None else index.scripts)
    logger.info(
        "{} replayable pairs of {} in {}; replaying {}", len(index.scripts), index.n_pairs, args.file, len(scripts)
    )
    summary = ReplayDriver(args.url, concurrency=args.concurrency).run(scripts)
    summary.skipped = index.skipped
    for line in summary.lines():
        print(line)
    for sample in summary.error_samples:
        print(f"error: {sample}")
    return 1 if summary.errors else 0
