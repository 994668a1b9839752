"""Start-up of ``python app.py`` on a large data dir: time to the first ``/chat`` answer and RSS.

Run (through the shared lock; figures with the load at the time)::

    flock /tmp/bench.lock .venv/bin/python bench/bench_startup.py --turns 1000000
    flock /tmp/bench.lock .venv/bin/python bench/bench_startup.py --turns 20000 --data /tmp/d --keep

It writes a data dir of turn shards with the synthetic generator of ``bench_export.py`` (two
replicas, 8 MiB shards, conversations of 1-6 turns, ~3.4 KB per turn: 1M turns is ~3.4 GB), then
starts ``python app.py`` on it three times and prints for each start:

- **first start**: no conversation index yet, so it is built from every shard, in the background;
- **restart**: the index is built, nothing new;
- **catch-up**: 1,000 new turns (``--new-turns``) appended while the app was down by "another
  replica" (a new shard), one of them continuing an old conversation.

``--text-scale 0.15 --shard-bytes 2400000`` makes a 10M-turn data dir of ~10 GB in about as many
shards as the real ~33 GB one would have (what start-up reads once the index is built is the
shard list and the index, not the text), when the disk cannot hold the real one.

Figures per start: seconds from process start to HTTP ready and to the first ``/chat`` answered
(a new conversation), RSS then and after it, the seconds until a ``/chat`` continuing an *old*
conversation is answered (it waits for the index's catch-up), whether that turn got the right
``turn_index``, the peak RSS of the process (``VmHWM``) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import gradio_client  # noqa: F401 - imported before the clock starts
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_export  # noqa: E402 - a sibling script
from bench_export import TextPool, generate_turns  # noqa: E402

INDEX_FILES = (".conversations.sqlite3", ".conversations.sqlite3-wal", ".conversations.sqlite3-shm")


class ScaledPool(TextPool):
    """:class:`TextPool` with every text ``scale`` times as long (``--text-scale``)."""

    def __init__(self, rng: random.Random, scale: float) -> None:
        super().__init__(rng)
        self.scale = scale

    def take(self, mean_chars: int) -> str:
        return super().take(max(1, int(mean_chars * self.scale)))


def proc_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def load() -> str:
    """The 1-minute load average and the core count, e.g. ``load 1.23/2``."""
    return f"load {os.getloadavg()[0]:.2f}/{os.cpu_count()}"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Chat:
    """``/chat`` through ``gradio_client`` (it fills in the parameters left out with their defaults)."""

    def __init__(self, url: str) -> None:
        from gradio_client import Client

        self.client = Client(url, verbose=False)

    def send(self, text: str, conversation_id: str = "") -> dict:
        return self.client.predict({"text": text, "files": []}, conversation_id, api_name="/chat")


@dataclass
class StartFigures:
    ready_s: float
    first_chat_s: float
    rss_ready_mb: float
    rss_first_chat_mb: float
    old_chat_s: float
    old_turn_index_ok: bool
    peak_rss_mb: float
    rss_end_mb: float
    load: str


def measure_start(data: Path, old: tuple[str, int], log: Path) -> StartFigures:
    """Start ``python app.py`` on ``data``, measure, stop it. ``old`` is ``(conversation_id, the
    turn_index its next turn must get)``."""
    port = free_port()
    env = {
        **os.environ,
        "FEEDBACK_DATA_DIR": str(data),
        "GRADIO_SERVER_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "FEEDBACK_LOG_LEVEL": "INFO",
    }
    env.pop("FEEDBACK_DATASET_REPO", None)
    url = f"http://127.0.0.1:{port}"
    with open(log, "a") as out:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app exited {process.returncode}; see {log}")
            try:
                if httpx.get(f"{url}/gradio_api/info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        ready = time.monotonic() - started
        rss_ready = proc_kib(process.pid, "VmRSS") / 1024
        chat = Chat(url)
        chat.send("hello, a new conversation")
        first = time.monotonic() - started
        rss_first = proc_kib(process.pid, "VmRSS") / 1024
        reply = chat.send("and one more thing", old[0])
        old_s = time.monotonic() - started
        figures = StartFigures(
            ready,
            first,
            rss_ready,
            rss_first,
            old_s,
            reply.get("turn_index") == old[1],
            proc_kib(process.pid, "VmHWM") / 1024,
            proc_kib(process.pid, "VmRSS") / 1024,
            load(),
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return figures


def old_conversation(data: Path) -> tuple[str, int]:
    """The conversation of the first line of the middle shard, and its path length (the
    turn_index its next turn must get), from every shard that mentions it."""
    shards = sorted((data / "turns").glob("*.jsonl"))
    with open(shards[len(shards) // 2], "rb") as handle:
        cid = json.loads(handle.readline())["conversation_id"]
    needle, indexes = cid.encode(), []
    for shard in shards:
        content = shard.read_bytes()
        if needle in content:
            indexes += [json.loads(line)["turn_index"] for line in content.splitlines() if needle in line]
    return cid, max(indexes) + 1


def append_replica_shard(data: Path, count: int, old: tuple[str, int], seed: int = 7) -> tuple[str, int]:
    """Write ``count`` turns to a new shard of "another replica": the first continues conversation
    ``old`` (at its turn_index), the rest are new conversations. Returns ``old`` with the
    turn_index its next turn must get."""
    rng = random.Random(seed)
    pool = TextPool(rng, chars=2_000_000)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # while the app was down: after its turns
    with open(
        data / "turns" / f"{stamp[:4]}{stamp[5:7]}{stamp[8:10]}T000000Z-another-replica-{time.time_ns()}.jsonl", "w"
    ) as shard:
        for n in range(count):
            cid, index = (old[0], old[1]) if n == 0 else (os.urandom(16).hex(), 0)
            record = {
                "schema_version": 1,
                "timestamp": stamp,
                "conversation_id": cid,
                "message_id": os.urandom(16).hex(),
                "turn_index": index,
                "messages": [{"role": "user", "content": pool.take(200), "files": []}],
                "response": pool.take(800),
                "model": "replica-b",
                "params": {},
                "latency_ms": 10.0,
                "regenerated_from": None,
                "edited_from": None,
                "source": "api",
            }
            shard.write(json.dumps(record) + "\n")
    return old[0], old[1] + 1


def shards_size(data: Path) -> str:
    shards = list((data / "turns").glob("*.jsonl"))
    return f"{sum(p.stat().st_size for p in shards) / 1e9:.2f} GB in {len(shards)} shards"


def index_size(data: Path) -> str:
    total = sum((data / name).stat().st_size for name in INDEX_FILES if (data / name).exists())
    return f"{total / 1e9:.2f} GB"


def report(label: str, figures: StartFigures) -> None:
    print(
        f"{label:<12} ready {figures.ready_s:6.2f} s   first /chat {figures.first_chat_s:6.2f} s   "
        f"RSS after start {figures.rss_ready_mb:5.0f} MB, after first chat {figures.rss_first_chat_mb:5.0f} MB   "
        f"old conversation continued at {figures.old_chat_s:7.2f} s "
        f"(turn_index {'right' if figures.old_turn_index_ok else 'WRONG'})   "
        f"peak RSS {figures.peak_rss_mb:5.0f} MB, at the end {figures.rss_end_mb:5.0f} MB   [{figures.load}]",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1_000_000, help="turns in the data dir (default 1,000,000)")
    parser.add_argument(
        "--new-turns", type=int, default=1000, help="turns another replica adds while down (default 1,000)"
    )
    parser.add_argument("--data", type=Path, help="data dir to use or create (default: a temp dir, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (with --data)")
    parser.add_argument(
        "--index-built",
        action="store_true",
        help="keep the data dir's index (from an earlier --keep run) and skip the first start",
    )
    parser.add_argument(
        "--text-scale",
        type=float,
        default=1.0,
        help="make every message and reply this many times as long (default 1: ~3.4 KB per turn)",
    )
    parser.add_argument(
        "--shard-bytes", type=int, default=8 * 1024 * 1024, help="shard size (default 8 MiB, as the app)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-startup-", dir=args.data.parent if args.data else None))
    data = args.data or work / "data"
    log = work / "app.log"
    try:
        if not (data / "turns").is_dir():
            started = time.monotonic()
            rng = random.Random(args.seed)
            bench_export.SHARD_BYTES = args.shard_bytes  # read by its ShardWriter at each write
            generate_turns(data, args.turns, rng, ScaledPool(rng, args.text_scale))
            print(f"generate: {time.monotonic() - started:7.1f} s   ({shards_size(data)})", flush=True)
        if not args.index_built:
            for name in INDEX_FILES:
                (data / name).unlink(missing_ok=True)
        old = old_conversation(data)
        print(f"data dir: {data} ({shards_size(data)}); app log: {log}", flush=True)
        if not args.index_built:
            report("first start", measure_start(data, old, log))
            old = (old[0], old[1] + 1)
        print(f"index: {index_size(data)}", flush=True)
        report("restart", measure_start(data, old, log))
        old = append_replica_shard(data, args.new_turns, (old[0], old[1] + 1))
        report("catch-up", measure_start(data, old, log))
    finally:
        if not args.keep:
            shutil.rmtree(data if args.data else work, ignore_errors=True)
        if args.data and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
