"""Benchmark of deleting a conversation from a large data dir: the request path and the erasure.

Run::

    .venv/bin/python bench/bench_deletion.py --turns 1000000               # data made in a temp dir
    .venv/bin/python bench/bench_deletion.py --data /path/to/data          # a copy of an existing data dir

It makes (or copies) a data dir of JSONL shards as ``bench/bench_export.py`` does, builds its conversation
index (the app's first start), then, in this process, for a few conversations picked at random:

- ``Eraser.forget`` as ``/forget`` calls it (the request path: the deletion record written, the index
  told): milliseconds per call, which must not grow with the history;
- the erasure the eraser's worker runs after it (``erase_local``: every shard searched, the affected
  ones rewritten, unused uploads removed, the index updated), timed from the call's return to the
  worker's end: seconds, shards rewritten, records removed;

and the process's peak RSS (VmHWM). A Hub sync adds the repo's erasure commit (``feedback.hub.erase``):
not measured here (the test Hub is on the same machine).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def conversations(data: Path, count: int, rng: random.Random) -> list[str]:
    """``count`` conversation ids read from random turn shards."""
    shards = sorted((data / "turns").glob("*.jsonl"))
    picked: list[str] = []
    while len(picked) < count:
        with open(rng.choice(shards), "rb") as handle:
            lines = handle.read(1 << 20).split(b"\n")[:-1]
        cid = json.loads(rng.choice(lines))["conversation_id"]
        if cid not in picked:
            picked.append(cid)
    return picked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1_000_000, help="turns to generate (default 1,000,000)")
    parser.add_argument("--data", type=Path, help="an existing data dir: a copy of it is used (it is not changed)")
    parser.add_argument("--deletions", type=int, default=5, help="conversations deleted one after another (default 5)")
    args = parser.parse_args(argv)

    from feedback.privacy.deletion import Eraser
    from feedback.recorder import FeedbackRecorder
    from feedback.store import FeedbackStore

    work = Path(tempfile.mkdtemp(prefix="bench-deletion-"))
    data = work / "data"
    try:
        started = time.monotonic()
        if args.data:
            shutil.copytree(args.data, data, ignore=shutil.ignore_patterns(".*"))
            print(f"copied {args.data} in {time.monotonic() - started:.0f} s")
        else:
            from bench_export import generate

            generate(data, turns=args.turns, ratings=args.turns, flags=args.turns // 20)
            print(f"generated {args.turns:,} turns in {time.monotonic() - started:.0f} s")
        size = sum(p.stat().st_size for p in data.rglob("*.jsonl"))
        shards = len(list(data.glob("*/*.jsonl")))
        print(f"data dir: {size / 1e9:.2f} GB in {shards} shards; load {os.getloadavg()[0]:.2f}")

        store = FeedbackStore(data)
        recorder = FeedbackRecorder(store, flag_reasons=["Harmful", "Inaccurate", "Off-topic", "Other"])
        started = time.monotonic()
        recorder.index.wait_ready()
        print(f"conversation index built in {time.monotonic() - started:.1f} s (the app's first start)")
        eraser = Eraser(recorder, resume=False)
        rng = random.Random(7)
        for cid in conversations(data, args.deletions, rng):
            started = time.perf_counter()
            eraser.forget(cid, requested_by="operator")
            forget_ms = (time.perf_counter() - started) * 1000
            started = time.monotonic()
            assert eraser.wait(), "the erasure did not finish"
            erase_s = time.monotonic() - started
            report = eraser.last_erasure
            assert report is not None and cid in report.conversation_ids
            print(
                f"forget {forget_ms:.1f} ms; erasure {erase_s:.1f} s: {report.summary()}; "
                f"peak RSS {peak_rss_mib():.0f} MiB; load {os.getloadavg()[0]:.2f}"
            )
        eraser.close()
        recorder.close()
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
