"""Replay hh-rlhf harmless-base through the running app and through a plain gr.ChatInterface.

    python bench/bench_replay.py [--limit N] [--concurrency C]

Starts each app as its own server process on a free 127.0.0.1 port:
- chat-feedback with the replay responder: the full ``python -m feedback replay`` flow
  (every human turn via /chat, dislike, regenerate, like), every reply checked;
- a plain ``gr.ChatInterface`` echo app: the same number of /chat calls per conversation
  (human turns + 1 for the regeneration), no ratings (it has no rating API).
Prints time, turns, ratings and turns/s for each.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from gradio_client import Client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from feedback.cli.replay import ReplayDriver  # noqa: E402
from feedback.replay_data import ReplayIndex  # noqa: E402
from tests.support.sample_data import hh_rlhf_test_file  # noqa: E402 - the tests' finder of ../shared/data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **env, "GRADIO_SERVER_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{command} did not start on port {port}")


def plain_replay(url: str, scripts, concurrency: int) -> tuple[int, float]:  # noqa: ANN001
    local = threading.local()

    def one(script) -> int:  # noqa: ANN001
        if not hasattr(local, "client"):
            local.client = Client(url, verbose=False)
        for text in [*script.user_turns, script.user_turns[-1]]:
            local.client.predict(text, api_name="/chat")
        return len(script.user_turns) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        turns = sum(pool.map(one, scripts))
    return turns, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    hh = hh_rlhf_test_file()
    index = ReplayIndex.from_file(hh)
    scripts = list(index.scripts[: args.limit] if args.limit else index.scripts)
    print(
        f"pairs: {index.n_pairs:,}, replayable: {len(index.scripts):,}, replaying: {len(scripts):,}, "
        f"concurrency: {args.concurrency}"
    )

    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        env = {
            "FEEDBACK_RESPONDER": "replay",
            "FEEDBACK_REPLAY_FILE": str(hh),
            "FEEDBACK_DATA_DIR": data_dir,
            "FEEDBACK_LOG_LEVEL": "WARNING",
        }
        app = start([sys.executable, "app.py"], env, port)
        try:
            summary = ReplayDriver(f"http://127.0.0.1:{port}", concurrency=args.concurrency).run(scripts)
        finally:
            app.terminate()
            app.wait(30)
        summary.skipped = index.skipped
        print("chat-feedback (replay responder, /chat + /rate + /regenerate):")
        for line in summary.lines():
            print("  " + line)

    port = free_port()
    plain = start([sys.executable, "bench/plain_echo_app.py"], {}, port)
    try:
        turns, seconds = plain_replay(f"http://127.0.0.1:{port}", scripts, args.concurrency)
    finally:
        plain.terminate()
        plain.wait(30)
    print("plain gr.ChatInterface echo app (/chat only):")
    print(f"  turns: {turns:,}\n  seconds: {seconds:.1f}\n  turns/s: {turns / seconds:.1f}")


if __name__ == "__main__":
    main()
