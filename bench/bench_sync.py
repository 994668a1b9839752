"""Push cost of the Hub sync: records written in batches, one scheduled commit per batch.

    python bench/bench_sync.py [--records 10000 100000] [--commits 5]

Runs the real ``huggingface_hub`` client (FeedbackScheduler, i.e. CommitScheduler) against the
test suite's local Hub server, and prints per run: commits, bytes uploaded per commit (counted by
the server), push time per commit, and the repo size. Records are half turns (a ~250-character
prompt, a ~1,000-character reply), half ratings.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from huggingface_hub import HfApi  # noqa: E402
from support.hub import HubServer  # noqa: E402

from feedback.hub.sync import FeedbackScheduler  # noqa: E402
from feedback.store import FeedbackStore  # noqa: E402
from schemas.records import ChatMessage, Rating, Turn, new_id  # noqa: E402

PROMPT = "How should I think about this question, given what we discussed earlier? " * 3
REPLY = "Here is a careful answer that weighs the options one by one and explains each. " * 12


def records(n: int):  # noqa: ANN201 - a generator of records
    for _ in range(n // 2):
        turn = Turn(
            conversation_id=new_id(),
            turn_index=0,
            messages=[ChatMessage(role="user", content=PROMPT)],
            response=REPLY,
            model="bench",
            latency_ms=12.5,
        )
        yield turn
        yield Rating(conversation_id=turn.conversation_id, message_id=turn.message_id, rating="like")


def run(n: int, commits: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubServer(Path(tmp) / "hub").start()
        try:
            store = FeedbackStore(Path(tmp) / "data")
            api = HfApi(endpoint=hub.endpoint, token="hf_bench")
            scheduler = FeedbackScheduler(store=store, repo_id="bench/sync", every=10_000, hf_api=api)
            scheduler.trigger().result()
            stream, per_batch, times = records(n), n // commits, []
            for _ in range(commits):
                for _ in range(per_batch):
                    store.append(next(stream))
                started = time.perf_counter()
                scheduler.trigger().result()
                times.append(time.perf_counter() - started)
            scheduler.stop()
            pushed = [c for c in hub.commits("bench/sync") if c["bytes_uploaded"]][-commits:]
            repo_bytes = sum(len(v) for v in hub.files("bench/sync").values())
        finally:
            hub.stop()
    print(f"\n{n:,} records in {commits} commits ({per_batch:,} records each):")
    print("  commit  bytes uploaded  push time")
    for i, (commit, seconds) in enumerate(zip(pushed, times, strict=True), start=1):
        print(f"  {i:>6}  {commit['bytes_uploaded']:>14,}  {seconds:>8.2f} s")
    print(f"  repo size {repo_bytes:,} bytes; total push time {sum(times):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--commits", type=int, default=5)
    args = parser.parse_args()
    for n in args.records:
        run(n, args.commits)


if __name__ == "__main__":
    main()
