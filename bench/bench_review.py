"""Benchmark of the review queue and the stats at scale: a page of 50 flagged replies under each filter,
a stats refresh, and RSS, on a live data dir and on a dataset repo read in place (the test Hub).

Run::

    .venv/bin/python bench/bench_review.py --turns 1000000                 # data in a temp dir, removed
    .venv/bin/python bench/bench_review.py --turns 20000 --data /tmp/d     # keep the data
    .venv/bin/python bench/bench_review.py --turns 1000000 --no-hub        # the data dir only

The data dir is ``bench/bench_export.py``'s synthetic log (two replicas, 8 MiB shards, 5% of turns
flagged) plus a review of every fifth flagged reply. Each part runs in a fresh process, which prints:

- ``build``: the first look at the source (the review index built from nothing: every shard read once);
- ``restart``: a new process whose index is on disk (it only checks for new shards);
- ``page``: one queue page (50 rows) per filter, each a live call (it catches up with the source first);
- ``stats``: one stats refresh;
- RSS after the calls and the process's peak.

``--no-hub`` skips the repo part; otherwise the data dir is pushed to a test Hub (``tests/support/hub/``,
as Parquet, a day per partition) and compacted, and the same calls run on the repo read in place.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

FILTERS = {
    "open (default)": {},
    "page 10": {"page": 10},
    "reason Harmful": {"reason": "Harmful"},
    "model bench-model-a": {"model": "bench-model-a"},
    "date range": {"since": "2026-01-01", "until": "2026-01-02"},
    "status confirmed": {"status": "confirmed"},
    "every status": {"status": None},
}


def add_reviews(data: Path, share: float = 0.2, seed: int = 0) -> int:
    """A review of ``share`` of the flagged replies, in one shard; returns how many."""
    rng = random.Random(seed)
    flagged = {}
    for shard in sorted((data / "flags").glob("*.jsonl")):
        for line in shard.read_bytes().splitlines():
            record = orjson.loads(line)
            flagged[(record["conversation_id"], record["message_id"])] = record["timestamp"]
    chosen = rng.sample(sorted(flagged), int(len(flagged) * share))
    (data / "reviews").mkdir(exist_ok=True)
    lines = [
        orjson.dumps(
            {
                "schema_version": 1,
                "timestamp": flagged[key].replace("Z", "") + "Z",
                "conversation_id": key[0],
                "message_id": key[1],
                "decision": rng.choice(["confirmed", "dismissed", "needs-fix"]),
                "corrected_reply": None,
                "note": None,
                "reviewer": "bench",
            }
        )
        for key in chosen
    ]
    (data / "reviews" / "20260101T000000Z-reviewer0000-000001.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident set size now (``VmRSS``) or its peak (``VmHWM``: since this program
    started, unlike ``ru_maxrss``, which a child inherits from its parent), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(desk, label: str) -> dict:
    """Time the calls on ``desk``; returns the figures."""
    from datetime import date

    from feedback.review.queue import QueueFilter

    figures: dict = {"label": label}
    started = time.perf_counter()
    first = desk.page(QueueFilter())
    figures["build"] = time.perf_counter() - started
    figures["queue_total"] = first.total
    pages = {}
    for name, spec in FILTERS.items():
        spec = dict(spec)
        page = spec.pop("page", 1)
        for key in ("since", "until"):
            if key in spec:
                spec[key] = date.fromisoformat(spec[key])
        queue_filter = QueueFilter(**{"status": "open", **spec})
        started = time.perf_counter()
        shown = desk.page(queue_filter, offset=(page - 1) * 50)
        pages[name] = (time.perf_counter() - started, len(shown.items), shown.total)
    figures["pages"] = pages
    started = time.perf_counter()
    stats = desk.stats()
    figures["stats"] = time.perf_counter() - started
    figures["open_queue"] = stats.open_queue
    figures["rss_mib"] = rss_mib()
    figures["peak_rss_mib"] = rss_mib("VmHWM")
    return figures


def part_local(data: str) -> dict:
    """The live data dir: the desk the app builds."""
    from feedback.logs import setup_logging
    from feedback.recorder import FeedbackRecorder
    from feedback.review.desk import ReviewDesk
    from feedback.store import FeedbackStore

    setup_logging("WARNING")
    desk = ReviewDesk(FeedbackRecorder(FeedbackStore(data), flag_reasons=("Harmful",)))
    return measure(desk, "data dir")


def part_hub(repo_id: str, work: str) -> dict:
    """The repo read in place (HF_ENDPOINT is the test Hub)."""
    from feedback.cli.review import open_desk
    from feedback.logs import setup_logging

    setup_logging("WARNING")
    desk, _ = open_desk(repo_id, Path(work))
    return measure(desk, "repo in place")


def run_part(args: list[str]) -> dict:
    """One part in a fresh process; its figures."""
    result = subprocess.run(
        [sys.executable, __file__, "--part", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def show(figures: dict, title: str) -> None:
    print(
        f"{title} ({figures['label']}): first call {figures['build']:.2f} s; {figures['queue_total']:,} open flagged "
        f"replies",
        flush=True,
    )
    for name, (seconds, rows, total) in figures["pages"].items():
        print(f"  page  {name:<22} {seconds:6.3f} s   {rows:3d} rows of {total:,}", flush=True)
    print(f"  stats refresh               {figures['stats']:6.3f} s   (open queue {figures['open_queue']:,})")
    print(f"  RSS after {figures['rss_mib']:.0f} MiB, peak {figures['peak_rss_mib']:.0f} MiB", flush=True)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, help="data dir to use or create (default: a temp dir, removed)")
    parser.add_argument("--no-hub", action="store_true", help="skip the dataset repo part")
    parser.add_argument("--part", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        kind, *rest = args.part
        print(json.dumps(part_local(*rest) if kind == "local" else part_hub(*rest)))
        return 0
    from bench_export import _size, generate

    work = Path(tempfile.mkdtemp(prefix="bench-review-"))
    data = args.data or work / "data"
    try:
        if not (data / "turns").is_dir():
            started = time.perf_counter()
            generate(data, turns=args.turns, ratings=args.turns, flags=args.turns // 20)
            reviews = add_reviews(data)
            print(f"generate: {time.perf_counter() - started:.1f} s ({_size(data)}, {reviews:,} reviews)", flush=True)
        print(f"load average before: {load()}", flush=True)
        (data / ".review-index.duckdb").unlink(missing_ok=True)
        show(run_part(["local", str(data)]), "build + calls")
        show(run_part(["local", str(data)]), "restart + calls")
        index = data / ".review-index.duckdb"
        print(f"  index on disk: {index.stat().st_size / 1024**2:.0f} MiB; load average: {load()}", flush=True)
        if not args.no_hub:
            hub_part(data, work)
        print(f"load average after: {load()}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def hub_part(data: Path, work: Path) -> None:
    """Push ``data`` to a test Hub, compact it, and run the calls on the repo read in place."""
    from huggingface_hub import HfApi
    from support.hub import HubServer

    hub = HubServer(work / "hub", lfs_threshold=None).start()
    try:
        os.environ.update(
            HF_ENDPOINT=hub.endpoint,
            HF_TOKEN="hf_bench_token_0123456789",
            HF_HUB_DISABLE_XET="1",
            HF_HOME=str(work / "hf-home"),
            HF_HUB_DISABLE_TELEMETRY="1",
        )
        from feedback.hub.compact import compact_repo
        from feedback.hub.layout import utc_today
        from feedback.hub.transfer import push_folder
        from feedback.logs import setup_logging

        setup_logging("WARNING")
        api = HfApi(endpoint=hub.endpoint, token="hf_bench_token_0123456789")
        shutil.rmtree(data / ".hub-pushed", ignore_errors=True)
        started = time.perf_counter()
        push_folder(data, "bench/review", api=api)
        print(f"push to the test Hub: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        report = compact_repo("bench/review", api=api, today=utc_today() + timedelta(days=2))
        print(f"compact: {time.perf_counter() - started:.1f} s ({report.summary()}); load average {load()}", flush=True)
        show(run_part(["hub", "bench/review", str(work / "review")]), "repo: build + calls")
        show(run_part(["hub", "bench/review", str(work / "review")]), "repo: restart + calls")
    finally:
        hub.stop()
        shutil.rmtree(data / ".hub-pushed", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
